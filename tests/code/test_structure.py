"""Structure of the code rooms ``cmet/``, ``flows/``, ``serving/`` (read with ``ast``, nothing imported):
size limits, no import cycle, rooms imported in one direction only.

Rooms, lowest first: ``cmet`` (the library) < ``serving`` (BentoML) < ``flows`` (orchestration and
the ``cmet`` CLI, which registers the serving commands and publishes bentos). A room imports only
rooms below it, with one exception the contracts name: ``serving/build.py`` takes the bundle out of
the registry with ``flows.registry`` (``fetch_bundle``), the one way a bundle leaves MLflow.
Nothing in the rooms imports ``bench`` or ``tests``.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROOMS = ("cmet", "flows", "serving")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 100
#: room -> rooms it may import
MAY_IMPORT = {"cmet": {"cmet"}, "serving": {"cmet", "serving"}, "flows": {"cmet", "serving", "flows"}}
#: (importing module, imported module) edges allowed against the room order
ALLOWED_UPWARD = {("serving.build", "flows.registry")}
NEVER = ("bench", "tests")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    """{dotted name: path} of every module of the rooms (packages by their ``__init__``)."""
    out = {}
    for room in ROOMS:
        for p in sorted((ROOT / room).rglob("*.py")):
            if "__pycache__" not in p.parts:
                out[_module_name(p)] = p
    return out


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    """ids of the nodes under ``if TYPE_CHECKING:`` (never executed: they make no runtime import)."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for stmt in node.body:
                skip.update(id(n) for n in ast.walk(stmt))
    return skip


def _imported_names(name: str, path: Path) -> list[tuple[str, int]]:
    """Every module name an import statement of the module names (top level, inside functions and
    classes alike; relative imports resolved), with its line."""
    tree = _tree(path)
    skip = _type_checking_nodes(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import sub`` imports the submodule pkg.sub when there is one, else pkg
            found += [(f"{base}.{a.name}", node.lineno) for a in node.names]
    return found


def _resolve(target: str) -> str | None:
    """The project module an imported name lands in (its longest dotted prefix that is a module)."""
    mods = _modules()
    parts = target.split(".")
    for k in range(len(parts), 0, -1):
        cand = ".".join(parts[:k])
        if cand in mods:
            return cand
    return None


@cache
def _graph() -> dict[str, set[str]]:
    """Module import graph of the rooms: {module: modules it imports}."""
    graph: dict[str, set[str]] = {}
    for name, path in _modules().items():
        edges = set()
        for target, _ in _imported_names(name, path):
            mod = _resolve(target)
            if mod is not None and mod != name:
                edges.add(mod)
        graph[name] = edges
    return graph


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    comps: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
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
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                comps.append(sorted(comp))
    return comps


def test_module_and_function_sizes():
    too_long = []
    for path in _modules().values():
        rel = path.relative_to(ROOT)
        n = len(path.read_text().splitlines())
        if n > MAX_MODULE_LINES:
            too_long.append(f"{rel}: {n} lines (module, max {MAX_MODULE_LINES})")
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(
                        f"{rel}:{node.lineno} {node.name}: {length} lines (function, max {MAX_FUNCTION_LINES})"
                    )
    assert not too_long, "\n".join(too_long)


def test_no_import_cycle():
    cycles = [c for c in _strongly_connected(_graph()) if len(c) > 1]
    assert not cycles, "import cycles (strongly connected modules):\n" + "\n".join(
        " <-> ".join(c) for c in cycles
    )


def test_rooms_import_downward_only():
    wrong = []
    for name, path in _modules().items():
        room = name.split(".")[0]
        for target, line in _imported_names(name, path):
            top = target.split(".")[0]
            where = f"{path.relative_to(ROOT)}:{line} imports {target}"
            if top in NEVER:
                wrong.append(where)
            elif top in ROOMS and top not in MAY_IMPORT[room]:
                if (name, _resolve(target)) not in ALLOWED_UPWARD:
                    wrong.append(where)
    assert not wrong, "imports from a lower room into a higher one:\n" + "\n".join(sorted(set(wrong)))


def test_the_checks_see_what_they_check():
    """The graph is built from real imports: known edges are present, a made-up cycle is found."""
    graph = _graph()
    assert "cmet.face.expression" in graph["cmet.face.render"]  # top-level import
    assert "cmet.audio.extract" in graph["cmet.audio"]  # import inside a function
    assert "flows.registry" in graph["serving.build"]  # ``from flows import registry``
    toy = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert sorted(map(sorted, _strongly_connected(toy))) == [["a", "b", "c"], ["d"], ["e"]]
