"""The house's one direction, read from the real import graph (imports inside functions
included, ``if TYPE_CHECKING:`` blocks aside): no cycle anywhere in ``gateway``; the web layer
never imports the console; providers and the 23 client never import the web layer or the
console; the 23 client never imports Flask."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "gateway"


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue  # Alembic's scripts, loaded by Alembic
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for n in ast.walk(node)}
    return skipped


def _imported(module: str, path: Path) -> tuple[set[str], set[str]]:
    """(modules of gateway, top-level third-party names) that ``module`` imports."""
    tree = ast.parse(path.read_text())
    skipped = _type_checking_nodes(tree)
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")[: -node.level if path.name != "__init__.py" else None]
                if path.name == "__init__.py" and node.level > 1:
                    package = package[: 1 - node.level]
                base = ".".join([*package, base] if base else package)
            # ``from pkg import mod`` depends on pkg.mod when that is a module, else on pkg
            names |= {f"{base}.{alias.name}" for alias in node.names}
    return {n for n in names if n.startswith("gateway")}, {n.split(".")[0] for n in names}


def _graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    modules = _modules()

    def owner(name: str) -> str | None:
        parts = name.split(".")
        for end in range(len(parts), 0, -1):
            if ".".join(parts[:end]) in modules:
                return ".".join(parts[:end])
        return None

    edges: dict[str, set[str]] = {}
    outside: dict[str, set[str]] = {}
    for module, path in modules.items():
        ours, theirs = _imported(module, path)
        edges[module] = {o for n in ours if (o := owner(n)) and o != module and o != "gateway"}
        outside[module] = theirs
    return edges, outside


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle() -> None:
    edges, _ = _graph()
    assert _cycles(edges) == []


def test_imports_flow_one_way() -> None:
    edges, outside = _graph()
    wrong = []
    for module, targets in edges.items():
        for target in targets:
            if module.startswith("gateway.web") and target.startswith("gateway.admin"):
                wrong.append(f"{module} -> {target}")
            lower = module.startswith(("gateway.identity", "gateway.twentythree"))
            if lower and target.startswith(("gateway.web", "gateway.admin")):
                wrong.append(f"{module} -> {target}")
    flask_in_client = [
        m for m, names in outside.items()
        if m.startswith("gateway.twentythree") and names & {"flask", "werkzeug"}
    ]  # fmt: skip
    assert wrong == [] and flask_in_client == []


def test_the_graph_reader_sees_imports_inside_functions() -> None:
    """A cycle closed by an import inside a function is still a cycle."""
    edges, _ = _graph()
    assert "gateway.identity.registry" in edges["gateway.loader"]
    assert "gateway.identity.registry" not in edges["gateway.settings"]  # models never do
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_providers_never_render_html() -> None:
    """Providers say what to show (``Page``, ``Notice``); ``web`` renders it."""
    rendering = []
    for name, path in _modules().items():
        if not name.startswith("gateway.identity"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in ("flask", "jinja2"):
                found = {a.name for a in node.names} & {"render_template", "render_template_string"}
                rendering += [f"{name}: {n}" for n in sorted(found)]
    assert rendering == []
