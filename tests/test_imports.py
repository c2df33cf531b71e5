"""bprop's modules import one another in one direction only: no import cycles, not even through
imports inside functions or under ``if TYPE_CHECKING:``, and every module imports on its own.

A cycle that works only because one of its imports is deferred into a function is a design
telling us that a piece sits in the wrong place; this test names each such cycle, with the file
and line of every import in it, so that whoever meets it sees what to move.

Imports by a computed name (``importlib.import_module(f".{name}")``: bprop's lazy attributes,
the demo runner) cannot be read from the source; the last test imports every module anyway.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from collections import deque
from pathlib import Path

import bprop

PACKAGE = Path(bprop.__file__).resolve().parent  # the bprop these tests import


def module_names(package: Path) -> dict[str, Path]:
    """Every module of ``package`` by dotted name (a package by the name of its ``__init__``)."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = [package.name, *path.relative_to(package).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, int]]:
    """The modules of ``modules`` that the file ``path`` (module ``name``) imports, with the line
    of each import: every ``import`` and ``from ... import`` in the file, wherever it is.

    ``from package import name`` counts as importing the submodule ``package.name`` when there is
    one, else ``package``. Importing a submodule also runs its parent packages' ``__init__``, but
    those implicit imports are not counted: they would make every package that imports its own
    submodules look like a cycle.
    """
    is_package = path.name == "__init__.py"
    here = name if is_package else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.rsplit(".", node.level - 1)[0] if node.level > 1 else here
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module
            targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules
                       else source for alias in node.names]
            targets = list(dict.fromkeys(targets))  # `from m import a, b` imports m once
        else:
            continue
        found += [(target, node.lineno) for target in targets
                  if target in modules and target != name]
    return found


def import_graph(package: Path) -> dict[str, dict[str, list[str]]]:
    """``graph[a][b]``: where module ``a`` imports module ``b`` (``"path:line"`` each)."""
    modules = module_names(package)
    graph: dict[str, dict[str, list[str]]] = {name: {} for name in modules}
    for name, path in modules.items():
        for target, line in imports_of(name, path, modules):
            where = f"{path.relative_to(package.parent)}:{line}"
            graph[name].setdefault(target, []).append(where)
    return graph


def strongly_connected_components(graph) -> list[list[str]]:
    """Tarjan's algorithm, iteratively (no recursion limit): the groups of nodes that can each
    reach all the others. Every cycle lies inside one group of two or more."""
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = lowlink[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = lowlink[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(graph[successor])))
                    break
                if successor in on_stack:
                    lowlink[node] = min(lowlink[node], index[successor])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    lowlink[parent] = min(lowlink[parent], lowlink[node])
                if lowlink[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return components


def cycles(graph) -> list[list[str]]:
    """Enough cycles to cover every import that lies on one: for each edge inside a strongly
    connected component, the shortest way back from its end to its start. Each cycle is a
    list of modules that starts and ends with the same one, smallest name first."""
    found = set()
    for component in strongly_connected_components(graph):
        if len(component) < 2:
            continue
        inside = set(component)
        for start in component:
            for end in graph[start]:
                if end not in inside:
                    continue
                came_from = {end: None}
                queue = deque([end])
                while start not in came_from:
                    node = queue.popleft()
                    for successor in graph[node]:
                        if successor in inside and successor not in came_from:
                            came_from[successor] = node
                            queue.append(successor)
                path = [start]
                while path[-1] != end:
                    path.append(came_from[path[-1]])
                loop = [start, *reversed(path[1:])]  # start -> end -> ... -> (back to) start
                first = loop.index(min(loop))
                found.add(tuple(loop[first:] + loop[:first]))
    return [[*loop, loop[0]] for loop in sorted(found)]


def describe(cycle: list[str], graph) -> str:
    lines = [" -> ".join(cycle)]
    for a, b in zip(cycle[:-1], cycle[1:], strict=True):
        lines.append(f"    {a} imports {b} at {', '.join(graph[a][b])}")
    return "\n".join(lines)


def test_bprop_has_no_import_cycles():
    graph = import_graph(PACKAGE)
    assert len(graph) > 30 and graph["bprop"], "the modules and their imports were found"
    found = cycles(graph)
    assert not found, ("import cycles between bprop's modules (each import listed; move a "
                       "piece so that imports point one way):\n"
                       + "\n".join(describe(cycle, graph) for cycle in found))


def test_the_cycle_finder_finds_a_known_cycle_and_none_in_a_tree():
    graph = {"a": {"b": [], "d": []}, "b": {"c": []}, "c": {"a": [], "e": []}, "d": {},
             "e": {"f": []}, "f": {"e": []}, "g": {"a": []}}
    assert cycles(graph) == [["a", "b", "c", "a"], ["e", "f", "e"]]
    assert sorted(map(sorted, strongly_connected_components(graph))) == [
        ["a", "b", "c"], ["d"], ["e", "f"], ["g"]]
    # Two cycles through one module: both are named, so every import to undo is seen.
    assert cycles({"a": {"b": [], "c": []}, "b": {"a": []}, "c": {"a": []}}) == [
        ["a", "b", "a"], ["a", "c", "a"]]
    tree = {"a": {"b": [], "c": []}, "b": {"c": []}, "c": {}}
    assert cycles(tree) == [] and strongly_connected_components({"x" * 5000: {}})
    chain = {f"m{i}": {f"m{i + 1}": []} for i in range(1500)} | {"m1500": {"m0": []}}
    assert len(cycles(chain)[0]) == 1502  # longer than Python's recursion limit


def test_imports_are_found_wherever_they_are_written(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    sources = {
        "__init__.py": "from . import sub\nfrom .core import thing\n",
        "core.py": """\
            from typing import TYPE_CHECKING
            import os
            if TYPE_CHECKING:
                from .sub.leaf import Leaf

            def save():
                from . import files
                return files

            class Model:
                def load(self):
                    import pkg.sub.other
            """,
        "files.py": "import json\n",
        "sub/__init__.py": "from .leaf import Leaf\nVALUE = 1\n",
        "sub/leaf.py": "from ..sub import other\nfrom ..files import read, write\n",
        "sub/other.py": "from .. import files\n",
        "tool.py": "from .sub import VALUE\nfrom .sub import leaf\n",  # VALUE: not a module
    }
    for name, text in sources.items():
        (package / name).write_text(textwrap.dedent(text))
    graph = import_graph(package)
    assert {name: sorted(targets) for name, targets in graph.items()} == {
        "pkg": ["pkg.core", "pkg.sub"],
        "pkg.core": ["pkg.files", "pkg.sub.leaf", "pkg.sub.other"],
        "pkg.files": [],
        "pkg.sub": ["pkg.sub.leaf"],
        "pkg.sub.leaf": ["pkg.files", "pkg.sub.other"],
        "pkg.sub.other": ["pkg.files"],
        "pkg.tool": ["pkg.sub", "pkg.sub.leaf"],
    }
    assert graph["pkg.core"]["pkg.sub.leaf"] == [f"{Path('pkg', 'core.py')}:4"]
    assert graph["pkg.sub.leaf"]["pkg.files"] == [f"{Path('pkg', 'sub', 'leaf.py')}:2"]
    assert cycles(graph) == []
    # An import deferred into a function still closes a cycle.
    (package / "sub" / "other.py").write_text("from .. import files\n\n\ndef find():\n"
                                              "    from .leaf import Leaf\n")
    graph = import_graph(package)
    assert cycles(graph) == [["pkg.sub.leaf", "pkg.sub.other", "pkg.sub.leaf"]]
    assert describe(cycles(graph)[0], graph).splitlines() == [
        "pkg.sub.leaf -> pkg.sub.other -> pkg.sub.leaf",
        f"    pkg.sub.leaf imports pkg.sub.other at {Path('pkg', 'sub', 'leaf.py')}:1",
        f"    pkg.sub.other imports pkg.sub.leaf at {Path('pkg', 'sub', 'other.py')}:5"]


IMPORT_EACH = """\
import importlib, json, sys, traceback
failures = {}
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "bprop" or m.startswith("bprop.")]:
        del sys.modules[loaded]  # each module is imported into a bprop not yet loaded
    try:
        importlib.import_module(name)
    except BaseException:
        failures[name] = traceback.format_exc()
print(json.dumps(failures))
"""


def test_bprop_and_each_of_its_modules_import_cleanly_on_their_own():
    # In a fresh interpreter, with warnings as errors: an import order that only works because
    # the test session has already imported something, or a warning at import, shows here.
    # python -m bprop runs the command line, so __main__ is left to the command line's tests.
    names = [name for name in module_names(PACKAGE) if name != "bprop.__main__"]
    done = subprocess.run([sys.executable, "-W", "error", "-c", "import bprop"],
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    done = subprocess.run([sys.executable, "-W", "error", "-c", IMPORT_EACH, *names],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    failures = json.loads(done.stdout)
    assert not failures, "\n".join(f"import {name} fails:\n{text}"
                                   for name, text in failures.items())
