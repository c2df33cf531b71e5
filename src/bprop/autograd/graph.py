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


def render_text(root: Tensor, max_depth: int = 30) -> str:
    """The graph as an indented tree, output first; a node reached again is shown by name, and
    nothing deeper than ``max_depth`` levels is drawn (deep chains would need ever wider
    indentation).

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
    """
    names = _names(topological_order(root))
    lines: list[str] = []
    shown: set[int] = set()
    # Each entry: tensor, the prefix for its own line, the prefix for its children's lines.
    stack: list[tuple[Tensor, str, str, int]] = [(root, "", "", 0)]
    while stack:
        tensor, own, below, depth = stack.pop()
        name = names[id(tensor)]
        if id(tensor) in shown:
            lines.append(f"{own}{name}    (shown above)")
            continue
        if depth > max_depth:
            lines.append(f"{own}... (deeper than {max_depth} levels; not drawn)")
            continue
        shown.add(id(tensor))
        formula = _formula(tensor, names)
        grad = f"  grad {_number(tensor.grad)}" if tensor.requires_grad else ""
        lines.append(f"{own}{name}{formula}    value {_number(tensor.data)}{grad}")
        children = tensor.parents
        for i in reversed(range(len(children))):
            last = i == len(children) - 1
            stack.append((children[i], below + ("└── " if last else "├── "),
                          below + ("    " if last else "│   "), depth + 1))
    return "\n".join(lines)


def _formula(tensor: Tensor, names: dict[int, str]) -> str:
    if not tensor.op:
        return ""
    args = [names[id(p)] for p in tensor.parents]
    if len(args) == 2 and tensor.op in {"+", "-", "*", "/", "**", "@"}:
        return f" = {args[0]} {tensor.op} {args[1]}"
    return f" = {tensor.op}({', '.join(args)})"
