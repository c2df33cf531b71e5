"""Pictures of a computation graph: Graphviz DOT, and plain text for terminals and notebooks.

Variables (tensors) and operations are separate nodes, as in the tutorials' diagrams: an edge
runs from each input variable into the operation that uses it, and from the operation to the
variable it produces. Labels carry each variable's value and, after ``backward``, its gradient.
"""

from __future__ import annotations

import numpy as np

from .tensor import Tensor, topological_order


def _number(array: np.ndarray | None) -> str:
    if array is None:
        return "-"
    array = np.asarray(array)
    if array.size == 1:
        return f"{array.item():.4g}"
    return f"shape {array.shape}"


def _names(order: list[Tensor]) -> dict[int, str]:
    """A name for every tensor: its own, else t0, t1, ... in graph order."""
    names, counter = {}, 0
    for tensor in order:
        if tensor.name:
            names[id(tensor)] = tensor.name
        else:
            names[id(tensor)] = f"t{counter}"
            counter += 1
    return names


def _escape(text: str) -> str:
    """Text safe inside a DOT record label."""
    for char in '\\"{}|<>':
        text = text.replace(char, "\\" + char)
    return text


def to_dot(root: Tensor, title: str = "") -> str:
    """The graph that produced ``root`` in Graphviz DOT (render with ``dot -Tpng``).

    >>> from bprop.autograd import Tensor
    >>> x = Tensor(1.0, requires_grad=True, name="x")
    >>> z = (x * 2.0)
    >>> print(to_dot(z).splitlines()[0])
    digraph computation {
    """
    order = topological_order(root)
    names = _names(order)
    lines = ["digraph computation {", "  rankdir=LR;",
             '  node [fontname="Helvetica", fontsize=11];']
    if title:
        lines.append(f'  label="{_escape(title)}"; labelloc=t;')
    for tensor in order:
        node = f"v{id(tensor)}"
        text = f"{_escape(names[id(tensor)])} | value {_number(tensor.data)}"
        if tensor.requires_grad:
            text += f" | grad {_number(tensor.grad)}"
        lines.append(f'  {node} [shape=record, label="{{{text}}}"];')
        if tensor.op:
            op_node = f"op{id(tensor)}"
            lines.append(f'  {op_node} [shape=ellipse, label="{_escape(tensor.op)}"];')
            lines.append(f"  {op_node} -> {node};")
            for parent in tensor.parents:
                lines.append(f"  v{id(parent)} -> {op_node};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_text(root: Tensor, max_depth: int = 30, max_lines: int | None = None) -> str:
    """The graph as an indented tree, output first, one line per node (tensor); a node reached
    again is shown by name, and nothing deeper than ``max_depth`` levels is drawn (deep chains
    would need ever wider indentation). With ``max_lines``, only the first ``max_lines`` lines
    are drawn. Whenever nodes are left out, a last line says how many (and which, when few).

    >>> from bprop.autograd import Tensor
    >>> x = Tensor(1.0, requires_grad=True, name="x")
    >>> y = Tensor(2.0, requires_grad=True, name="y")
    >>> w = Tensor(4.0, requires_grad=True, name="w")
    >>> a = x + y; a.name = "a"
    >>> z = a * w; z.name = "z"
    >>> z.backward()
    >>> print(render_text(z))
    z = a * w    value 12  grad 1
    ├── a = x + y    value 3  grad 4
    │   ├── x    value 1  grad 4
    │   └── y    value 2  grad 4
    └── w    value 4  grad 3
    >>> print(render_text(z, max_lines=3))
    z = a * w    value 12  grad 1
    ├── a = x + y    value 3  grad 4
    │   ├── x    value 1  grad 4
    ... 2 of the graph's 5 nodes not drawn (y, w): the picture is cut at 3 lines
    """
    if max_lines is not None and max_lines < 1:
        raise ValueError(f"max_lines must be at least 1, got {max_lines}")
    order = topological_order(root)
    names = _names(order)
    lines: list[str] = []
    drawn: list[int | None] = []  # the node each line draws (None: a reference or a cut)
    shown: set[int] = set()
    deep = False
    # Each entry: tensor, the prefix for its own line, the prefix for its children's lines.
    stack: list[tuple[Tensor, str, str, int]] = [(root, "", "", 0)]
    while stack:
        tensor, own, below, depth = stack.pop()
        name = names[id(tensor)]
        if id(tensor) in shown:
            lines.append(f"{own}{name}    (shown above)")
            drawn.append(None)
            continue
        if depth > max_depth:
            lines.append(f"{own}... (deeper than {max_depth} levels; not drawn)")
            drawn.append(None)
            deep = True
            continue
        shown.add(id(tensor))
        formula = _formula(tensor, names)
        grad = f"  grad {_number(tensor.grad)}" if tensor.requires_grad else ""
        lines.append(f"{own}{name}{formula}    value {_number(tensor.data)}{grad}")
        drawn.append(id(tensor))
        children = tensor.parents
        for i in reversed(range(len(children))):
            last = i == len(children) - 1
            stack.append((children[i], below + ("└── " if last else "├── "),
                          below + ("    " if last else "│   "), depth + 1))
    reasons = [f"deeper than {max_depth} levels"] if deep else []
    if max_lines is not None and len(lines) > max_lines:
        lines, drawn = lines[:max_lines], drawn[:max_lines]
        reasons.append(f"the picture is cut at {max_lines} lines")
    kept = {node for node in drawn if node is not None}
    missing = [names[id(t)] for t in order if id(t) not in kept]
    if missing:
        # Name the nodes left out while that stays short (graph order: inputs first); the
        # list is reversed so that those nearest the output come first, as in the drawing.
        which = f" ({', '.join(reversed(missing))})" if len(missing) <= 6 else ""
        lines.append(f"... {len(missing)} of the graph's {len(order)} nodes not drawn{which}: "
                     + " and ".join(reasons))
    return "\n".join(lines)


def _formula(tensor: Tensor, names: dict[int, str]) -> str:
    if not tensor.op:
        return ""
    args = [names[id(p)] for p in tensor.parents]
    if len(args) == 2 and tensor.op in {"+", "-", "*", "/", "**", "@"}:
        return f" = {args[0]} {tensor.op} {args[1]}"
    return f" = {tensor.op}({', '.join(args)})"
