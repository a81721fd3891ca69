"""The import graph of ``src/polyfarm``: no cycles, and nothing imports the command line.

A cycle makes import order matter: whichever module of the loop is imported first sees the
others half-built, and the loop cannot be understood (or tested) one module at a time. The graph
is read from the source with ``ast``, without importing anything:

- ``import a.b.c`` depends on ``a.b.c`` and on its packages ``a`` and ``a.b``, except the
  importer's own packages (Python initialises those before the importer runs).
- ``from a.b import c`` depends on ``a.b``, because ``c`` is looked up in ``a.b``'s namespace
  (for a package, its ``__init__``), and also on ``a.b.c`` when that is a module. So a submodule
  that reaches a sibling through its package (``from polyfarm.sim import names``) depends on the
  package's ``__init__``, which imports the submodules back: name the sibling in full instead
  (``import polyfarm.sim.names as names`` or ``from polyfarm.sim.names import ...``).
- An import inside a function is a runtime edge too: it only postpones the cycle to the call.
  Imports under ``if TYPE_CHECKING:`` are kept apart; they form cycles only for the type checker.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

Graph = Mapping[str, frozenset[str]]

# Cycles that exist only under ``if TYPE_CHECKING:`` (none left; one would be listed here).
KNOWN_TYPE_ONLY_CYCLES: list[list[str]] = []


@dataclass
class Imports:
    """One module's dependencies on other modules of the tree."""

    runtime: set[str] = field(default_factory=set)
    type_only: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class ImportGraph:
    runtime: Graph
    with_type_only: Graph


def module_files(src: Path, package: str) -> dict[str, Path]:
    files = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    return files


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


class _Reader:
    """Resolves one module's import statements to modules of the tree."""

    def __init__(self, name: str, is_package: bool, modules: Iterable[str]) -> None:
        self.name = name
        self.package = name if is_package else name.rpartition(".")[0]
        self.modules = frozenset(modules)

    def targets(self, node: ast.Import | ast.ImportFrom) -> set[str]:
        if isinstance(node, ast.Import):
            named = {alias.name for alias in node.names}
        else:
            base = self._absolute(node)
            named = {base} | {f"{base}.{alias.name}" for alias in node.names}
        found: set[str] = set()
        for module in named:
            found |= self._with_packages(module)
        return found - {self.name}

    def _absolute(self, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        parts = self.package.split(".")
        parts = parts[: len(parts) - (node.level - 1)]
        return ".".join([*parts, node.module] if node.module else parts)

    def _with_packages(self, module: str) -> set[str]:
        """``module`` plus the packages importing it initialises, but not the importer's own."""
        found = {module} if module in self.modules else set()
        parts = module.split(".")
        for end in range(1, len(parts)):
            package = ".".join(parts[:end])
            if package in self.modules and not self.name.startswith(f"{package}."):
                found.add(package)
        return found


def read_imports(name: str, path: Path, modules: Iterable[str]) -> Imports:
    reader = _Reader(name, path.name == "__init__.py", modules)
    imports = Imports()
    _collect(ast.parse(path.read_text(), str(path)).body, reader, imports, type_only=False)
    imports.type_only -= imports.runtime
    return imports


def _collect(body: list[ast.stmt], reader: _Reader, imports: Imports, *, type_only: bool) -> None:
    for node in body:
        for child, child_type_only in _statements(node, type_only):
            if isinstance(child, ast.Import | ast.ImportFrom):
                bucket = imports.type_only if child_type_only else imports.runtime
                bucket.update(reader.targets(child))
            else:
                _collect([child], reader, imports, type_only=child_type_only)


def _statements(node: ast.stmt, type_only: bool) -> Iterator[tuple[ast.stmt, bool]]:
    """``node`` itself if it is an import, else the statements nested in it."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node, type_only
        return
    if isinstance(node, ast.If) and _is_type_checking(node.test):
        yield from ((child, True) for child in node.body)
        yield from ((child, type_only) for child in node.orelse)
        return
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.stmt):
            yield child, type_only
        elif isinstance(child, ast.ExceptHandler | ast.match_case):
            yield from ((grandchild, type_only) for grandchild in child.body)


def import_graph(src: Path = SRC, package: str = "polyfarm") -> ImportGraph:
    files = module_files(src, package)
    imports = {name: read_imports(name, path, files) for name, path in files.items()}
    return ImportGraph(
        runtime={name: frozenset(found.runtime) for name, found in imports.items()},
        with_type_only={
            name: frozenset(found.runtime | found.type_only) for name, found in imports.items()
        },
    )


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = [stack.pop()]
            while component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def _describe(components: list[list[str]], graph: Graph) -> str:
    lines = []
    for component in components:
        members = set(component)
        lines.append(" <-> ".join(component))
        lines.extend(
            f"    {source} -> {target}"
            for source in component
            for target in sorted(graph[source] & members)
        )
    return "\n".join(lines)


def test_no_runtime_import_cycle() -> None:
    graph = import_graph().runtime
    found = cycles(graph)
    assert not found, "runtime import cycles:\n" + _describe(found, graph)


def test_type_only_import_cycles_are_the_known_ones() -> None:
    graph = import_graph().with_type_only
    new = [cycle for cycle in cycles(graph) if cycle not in KNOWN_TYPE_ONLY_CYCLES]
    assert not new, "import cycles through TYPE_CHECKING:\n" + _describe(new, graph)


def test_nothing_imports_the_command_line() -> None:
    """``cli`` and ``commands`` sit on top: the library never reaches up into them."""
    graph = import_graph().runtime
    top = {"polyfarm.cli", "polyfarm.commands"}

    def on_top(module: str) -> bool:
        return any(module == name or module.startswith(f"{name}.") for name in top)

    upward = sorted(
        f"{source} -> {target}"
        for source, targets in graph.items()
        if not on_top(source)
        for target in targets
        if on_top(target)
    )
    assert not upward, "imports of the command line from below it:\n" + "\n".join(upward)


def test_the_graph_sees_the_imports() -> None:
    """Guards the checks above against a reader that silently finds nothing."""
    graph = import_graph()
    # ``polyfarm.cli`` names its commands' modules as strings (loaded when one runs): a
    # command's own imports are what a reader must see.
    assert {"polyfarm.daemon", "polyfarm.runtime"} <= graph.runtime["polyfarm.commands.collect"]
    assert "polyfarm.polymarket.schemas" in graph.runtime["polyfarm.polymarket.parse"]
    assert "polyfarm.stream.service" in graph.runtime["polyfarm.daemon"]


def test_a_submodule_importing_through_its_package_is_a_cycle(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from pkg.a import A\n")
    (package / "a.py").write_text("from pkg import b\nA = b.B\n")
    (package / "b.py").write_text("B = 1\n")
    (package / "c.py").write_text("def late():\n    import pkg.d\n")
    (package / "d.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.c import late\n"
    )

    graph = import_graph(tmp_path, "pkg")

    assert cycles(graph.runtime) == [["pkg", "pkg.a"]]
    assert cycles(graph.with_type_only) == [["pkg", "pkg.a"], ["pkg.c", "pkg.d"]]


def test_no_test_module_imports_another() -> None:
    """Shared helpers live in conftest.py or a helper module, so each test module runs alone."""
    tests = Path(__file__).resolve().parent
    files = module_files(tests.parent, "tests")
    offenders = sorted(
        f"{name} -> {target}"
        for name, path in files.items()
        for target in read_imports(name, path, files).runtime
        if target.rpartition(".")[2].startswith("test_")
    )
    assert not offenders, "test modules importing test modules:\n" + "\n".join(offenders)


# Packages from the bottom up. A module may import its own package and anything in a lower
# layer; never a higher layer, nor another package of its own layer (peers such as the REST
# collectors and the stream share what they need through a lower layer: ``polyfarm.markets``).
LAYERS: tuple[frozenset[str], ...] = tuple(
    frozenset(f"polyfarm.{name}" for name in layer.split())
    for layer in (
        "clock aio backoff errors logs metrics validation",
        "sdnotify",
        "config_file",
        "settings",
        "store polymarket sim",
        "markets runtime loopwatch lake",
        "collect stream api metrics_http data",
        "backfill",  # keys its trades as the stream keys live fills
        "daemon",
        "commands",
        "cli",
    )
)


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _layer_of(package: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if package in layer)


def layering_violations(graph: Graph) -> list[str]:
    wrong = []
    for source, targets in graph.items():
        if source == "polyfarm":
            continue
        home = _package(source)
        for target in targets:
            there = _package(target)
            if target == "polyfarm" or there == home:
                continue
            if _layer_of(there) >= _layer_of(home):
                wrong.append(f"{source} -> {target}")
    return sorted(wrong)


def test_every_package_has_a_layer() -> None:
    packages = {_package(m) for m in import_graph().runtime if m != "polyfarm"}
    placed = frozenset().union(*LAYERS)
    assert packages <= placed, f"packages without a layer: {sorted(packages - placed)}"


def test_no_import_reaches_up_or_sideways() -> None:
    graph = import_graph().with_type_only
    wrong = layering_violations(graph)
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_the_layering_check_sees_an_upward_import() -> None:
    graph = {"polyfarm.stream.x": frozenset({"polyfarm.collect.y"})}
    assert layering_violations(graph) == ["polyfarm.stream.x -> polyfarm.collect.y"]
