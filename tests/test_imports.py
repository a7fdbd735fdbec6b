"""The import graph of rag/, ui/, eval/ and bench/, read from the source with `ast`: no cycles,
and the library under rag/ never reaches for its edges.

Every import counts, at module level, inside a function or under `if TYPE_CHECKING:`: a
function-level import hides a cycle from Python until that function runs, and a type-only
one hides it from Python altogether, but neither removes it (a reader still has to know
both modules to read either). `rag.cli` is the command-line edge: it is the
one module under rag/ that may import `ui` and `eval` (to dispatch `rag ui` and `rag eval`).
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("rag", "ui", "eval", "bench")
EDGES = ("rag.cli", "ui", "eval")  # what the library must not import


def module_names(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """`{"rag": rag/__init__.py, "rag.store": rag/store.py, ...}` for every module under `packages`."""
    names = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            names[".".join(parts)] = path
    return names


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of `known` that module `name` imports anywhere in its source.

    `from rag import prompts` is the module `rag.prompts` when that is a module, otherwise
    the package `rag`; `import rag.store as s` is `rag.store`; relative imports are resolved
    against the module's own package.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import rag.store.x` -> the longest module it names
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(root: Path = ROOT, packages=PACKAGES) -> dict[str, set[str]]:
    """module -> the project modules it imports."""
    names = module_names(root, packages)
    return {name: imports_of(name, path, set(names)) for name, path in names.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import cycles, each as `[a, b, ..., a]` meaning a imports b imports ... imports a.
    Found one at a time by graphlib; each found cycle's closing edge is dropped and the
    search repeated, so every independent cycle is reported."""
    graph = {k: set(v) for k, v in graph.items()}
    found = []
    while True:
        try:
            tuple(TopologicalSorter(graph).static_order())  # node -> the nodes it needs first
            return found
        except CycleError as err:
            loop = err.args[1]  # each node is imported by the next one
            found.append(loop[::-1])
            graph[loop[1]].discard(loop[0])


def test_the_graph_sees_function_level_type_only_and_relative_imports(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("from .a import f\n")
    (tmp_path / "pkg" / "a.py").write_text("def f():\n    from pkg import b\n    return b\n")
    (tmp_path / "pkg" / "b.py").write_text("from pkg.a import f\nimport json\n")
    (tmp_path / "pkg" / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\n")
    graph = import_graph(tmp_path, ("pkg",))
    assert graph == {"pkg": {"pkg.a"}, "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}, "pkg.c": {"pkg.a"}}
    assert cycles(graph) in (
        [["pkg.a", "pkg.b", "pkg.a"]], [["pkg.b", "pkg.a", "pkg.b"]])


def test_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 20 and graph["rag.pipeline"], "the graph is empty: the walk found no modules"
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_the_library_does_not_import_its_edges():
    graph = import_graph()
    wrong = {
        name: sorted(t for t in targets if any(t == e or t.startswith(e + ".") for e in EDGES))
        for name, targets in graph.items()
        if (name == "rag" or name.startswith("rag.")) and name != "rag.cli"
    }
    wrong = {name: targets for name, targets in wrong.items() if targets}
    assert not wrong, f"modules under rag/ importing the CLI, the UI or the eval: {wrong}"
