"""The package's import structure, read from the source with ``ast`` (nothing is imported):

- no import cycle between modules, counting imports inside functions too (a lazy import that closes a circle
  works only as long as nobody moves it to the top of the file);
- the top-level rooms form layers: a module may import its own room and the rooms below it, never one above,
  not even lazily inside a function;
- the framework-free modules import no framework at module level (a lazy one in a function, for
  ``return_tensors="pt"`` say, is fine; test_torch_free.py checks what really gets imported).

A package's ``__init__`` is a module of its own (importing ``warmstart.config`` runs ``config/__init__.py``, which
imports every config module). Imports by string (``importlib.import_module`` behind the lazy name tables and the
family records' "module:Class" paths) are not edges: they run on first use, after the importing module has
loaded, and naming the higher layers by string is exactly what lets the family records sit at the bottom.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "warmstart"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE

# Top-level rooms, low to high. The facade (warmstart/__init__.py, which resolves every public name lazily) is
# highest: no module inside the package may import through it.
LAYERS = ("families", "hardware", "storage", "config", "outputs", "checkpoint", "tokenizers", "nn", "generation", "models",
          "flax", "tf", "train", "convert", "cli", "__init__")
# Modules that must not import torch, TensorFlow, JAX or Flax when they load (rooms, or single modules).
FRAMEWORK_FREE = ("families", "hardware", "storage", "config", "outputs", "tokenizers", "checkpoint.keymaps",
                  "checkpoint.arrays", "checkpoint.crc32c", "checkpoint.tf1_bundle", "checkpoint.tf1_layout",
                  "checkpoint.tf1_save", "checkpoint.foreign", "__init__")
FRAMEWORK_ROOTS = {"torch", "tensorflow", "jax", "flax"}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    function: str | None  # the enclosing function of a lazy import; None at module level

    def where(self) -> str:
        path = _MODULES[self.source][0].relative_to(ROOT.parent)
        return f"{path}:{self.line}" + (f" (in {self.function}())" if self.function else "")


def _find_modules() -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package __init__)."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


_MODULES = _find_modules()


class _Imports(ast.NodeVisitor):
    """Every intra-package import of one module, with its line and enclosing function."""

    def __init__(self, module: str, is_package: bool):
        self.module = module
        self.package = module if is_package else module.rpartition(".")[0]
        self.functions: list[str] = []
        self.edges: list[Edge] = []

    def _add(self, target: str, node: ast.AST) -> None:
        if (target == PACKAGE or target.startswith(PACKAGE + ".")) and target != self.module:
            self.edges.append(Edge(self.module, target, node.lineno, self.functions[-1] if self.functions else None))

    def _function(self, node) -> None:
        self.functions.append(node.name)
        self.generic_visit(node)
        self.functions.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            parts = self.package.split(".")
            assert node.level <= len(parts), f"{self.module}: relative import above the package"
            base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        for alias in node.names:
            # `from pkg import name` imports the module pkg.name when there is one, else takes a name of pkg.
            child = f"{base}.{alias.name}"
            self._add(child if child in _MODULES else base, node)


def _edges() -> list[Edge]:
    out = []
    for module, (path, is_package) in _MODULES.items():
        visitor = _Imports(module, is_package)
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        out += visitor.edges
    return list(dict.fromkeys(out))  # `from x import a, b` is one edge, not two


EDGES = _edges()


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _in(module: str, names) -> bool:
    rel = module.removeprefix(PACKAGE + ".") if module != PACKAGE else "__init__"
    return any(rel == n or rel.startswith(n + ".") for n in names)


def _cycles(edges: list[Edge]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    graph: dict[str, set[str]] = {m: set() for m in _MODULES}
    for e in edges:
        graph[e.source].add(e.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _shortest_cycle(members: list[str], edges: list[Edge]) -> list[Edge]:
    """One shortest circle through the first member of a component (breadth-first), as the edges that close it."""
    inside = set(members)
    step: dict[str, list[Edge]] = {}
    for e in edges:
        if e.source in inside and e.target in inside:
            step.setdefault(e.source, []).append(e)
    start = members[0]
    came: dict[str, Edge] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for e in step.get(node, []):
                if e.target == start:
                    path = [e]
                    while path[0].source != start:
                        path.insert(0, came[path[0].source])
                    return path
                if e.target not in came:
                    came[e.target] = e
                    nxt.append(e.target)
        frontier = nxt
    raise AssertionError(f"no cycle through {start}")  # a component of two or more always has one


def test_every_import_target_is_a_module():
    # A target the resolver cannot place would silently drop out of both checks below.
    unknown = [f"{e.where()} imports {e.target}" for e in EDGES if e.target not in _MODULES]
    assert not unknown, "imports of no module in the package:\n" + "\n".join(unknown)


def test_no_import_cycles():
    cycles = _cycles(EDGES)
    report = []
    for members in cycles:
        report.append(f"{len(members)} modules import each other: " + ", ".join(members))
        report.append("  one circle among them:")
        report += [f"    {e.where()} imports {e.target}" for e in _shortest_cycle(members, EDGES)]
    assert not cycles, "import cycles (break each by moving the shared piece down a layer):\n" + "\n".join(report)


def test_the_cycle_finder_finds_cycles():
    # The checker itself: a two-module circle and a three-module one are found, a chain is not.
    edge = lambda a, b: Edge(f"{PACKAGE}.{a}", f"{PACKAGE}.{b}", 1, None)  # noqa: E731
    assert _cycles([edge("families", "outputs"), edge("outputs", "families")]) == [
        [f"{PACKAGE}.families", f"{PACKAGE}.outputs"]]
    triangle = [edge("cli", "nn"), edge("nn", "outputs"), edge("outputs", "cli"), edge("nn", "families")]
    assert len(_cycles(triangle)[0]) == 3
    assert [e.source for e in _shortest_cycle(_cycles(triangle)[0], triangle)] == [
        f"{PACKAGE}.cli", f"{PACKAGE}.nn", f"{PACKAGE}.outputs"]
    assert _cycles([edge("cli", "nn"), edge("nn", "outputs")]) == []


def test_every_room_has_a_layer():
    rooms = {_room(m) for m in _MODULES}
    assert rooms <= set(LAYERS), f"place the new room(s) {sorted(rooms - set(LAYERS))} in LAYERS ({__file__})"


def test_no_module_imports_a_higher_layer():
    rank = {room: i for i, room in enumerate(LAYERS)}
    upward = [e for e in EDGES if rank[_room(e.target)] > rank[_room(e.source)]]
    report = [f"{e.where()}: {_room(e.source)} imports {e.target} ({_room(e.target)} is a higher layer)"
              for e in upward]
    assert not upward, ("imports against the layer order " + " < ".join(LAYERS) + ":\n" + "\n".join(report))


def _module_level_imports(path: Path):
    """(line, top-level package name) of every import that runs when the module loads (not in a function)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))

    def walk(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.Import):
                yield from ((child.lineno, a.name.partition(".")[0]) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and not child.level and child.module:
                yield child.lineno, child.module.partition(".")[0]
            yield from walk(child)

    return walk(tree)


def test_framework_free_modules_import_no_framework_when_loaded():
    offenders = []
    for module, (path, _) in _MODULES.items():
        if not _in(module, FRAMEWORK_FREE):
            continue
        offenders += [f"{path.relative_to(ROOT.parent)}:{line} imports {name}"
                      for line, name in _module_level_imports(path) if name in FRAMEWORK_ROOTS]
        # ...nor, at module level, a module of the package that is not framework-free itself.
        offenders += [f"{e.where()} imports {e.target}, which may import a framework"
                      for e in EDGES if e.source == module and e.function is None and not _in(e.target, FRAMEWORK_FREE)]
    assert not offenders, "framework imports in framework-free modules:\n" + "\n".join(offenders)


@pytest.mark.parametrize("module", ["families", "checkpoint.keymaps", "config.base"])
def test_parser_sees_known_imports(module):
    # Guards the resolver against silently finding nothing (a bad relative-import rule would pass every check).
    expected = {"families": set(), "checkpoint.keymaps": {"checkpoint.arrays"},
                "config.base": {"storage.files", "storage.hub", "storage.options"}}[module]
    got = {e.target.removeprefix(PACKAGE + ".") for e in EDGES if e.source == f"{PACKAGE}.{module}"}
    assert expected <= got, (module, got)
