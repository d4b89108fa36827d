"""Arrows point one way: web → domain → models; workers → domain; nothing below imports above.

The import graph of service/, workers/, models/ and config/ is read from the source with
``ast`` (every import statement, including those inside functions, since a deferred import
is still a dependency), so these checks need no app and import nothing.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("service", "workers", "models", "config")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                found[_module_name(path)] = path
    return found


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The longest known module that ``name`` names or lies in (``a.b.c`` → ``a.b`` if that is one)."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph() -> dict[str, set[str]]:
    """module → the project modules it imports (anywhere in its body)."""
    known = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in known.items():
        is_package = path.name == "__init__.py"
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: from the module's own package upwards
                    base = module.split(".")
                    base = base[:len(base) - node.level + (1 if is_package else 0)]
                    prefix = ".".join(base + ([node.module] if node.module else []))
                else:
                    prefix = node.module
                # "from a import b" imports the submodule a.b if there is one, else a name of a
                names = [f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in known else prefix
                         for alias in node.names]
            else:
                continue
            for name in names:
                target = _resolve(name, known)
                if target is not None and target != module:
                    targets.add(target)
        graph[module] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def _top(module: str) -> str:
    return module.split(".")[0]


def _edges(graph, source_prefix: str, target_top: tuple[str, ...]) -> list[str]:
    return sorted(f"{m} → {t}" for m, ts in graph.items() for t in ts
                  if (m == source_prefix or m.startswith(source_prefix + ".")) and _top(t) in target_top)


def test_the_graph_sees_deferred_and_package_imports():
    graph = import_graph()
    assert "models.org" in graph["models"]  # from models.org import ... in models/__init__.py
    assert "service.cases.routing" in graph["workers.tasks"]  # from service.cases import routing
    assert "config.settings" in graph["config"]


def test_no_cycle_among_top_level_packages():
    packages = {}
    for module, targets in import_graph().items():
        packages.setdefault(_top(module), set()).update(_top(t) for t in targets if _top(t) != _top(module))
    assert _cycles(packages) == []


def test_no_cycle_between_the_floor_check_and_the_tasks():
    graph = import_graph()
    cycles = [c for c in _cycles(graph) if "service.stats.floor" in c or "workers.tasks" in c]
    assert cycles == []
    assert "workers.tasks" not in graph["service.stats.floor"]


def test_models_import_neither_service_nor_workers():
    assert _edges(import_graph(), "models", ("service", "workers")) == []


def test_service_sends_tasks_by_name_never_importing_workers():
    assert _edges(import_graph(), "service", ("workers",)) == []


def test_config_imports_nothing_of_the_project_above_it():
    assert _edges(import_graph(), "config", ("service", "workers", "models")) == []


# -- settings in one place -----------------------------------------------------------

SETTINGS = ROOT / "config" / "settings.py"


def _hcp_reads(path: Path) -> list[str]:
    """``HCP_*`` names read from the environment in ``path``: os.environ.get/[...], os.getenv."""
    reads = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            is_environ_get = node.func.attr == "get" and ast.unparse(node.func.value).endswith("environ")
            is_getenv = node.func.attr == "getenv"
            arg = node.args[0]
            if (is_environ_get or is_getenv) and isinstance(arg, ast.Constant) and str(arg.value).startswith("HCP_"):
                reads.append(arg.value)
        if (isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load)
                and ast.unparse(node.value).endswith("environ") and isinstance(node.slice, ast.Constant)
                and str(node.slice.value).startswith("HCP_")):
            reads.append(node.slice.value)
    return reads


def test_hcp_variables_are_read_only_in_config_settings():
    outside = {}
    for folder in ("service", "workers", "models", "config", "scripts", "bench"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path != SETTINGS and _hcp_reads(path):
                outside[str(path.relative_to(ROOT))] = _hcp_reads(path)
    assert outside == {}


def test_every_setting_is_in_the_readme_configuration_table():
    import re

    # the names given to env.get(...) (HCP_SETTINGS is a Flask config key, not a variable)
    names = set(re.findall(r'env\.get\("(HCP_[A-Z0-9_]+)"', SETTINGS.read_text()))
    assert {"HCP_DATABASE_URL", "HCP_WEB_WORKERS", "HCP_SMTP_HOST"} <= names
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Configuration"):]
    table = table[:table.index("\n## ", 1)]
    assert sorted(n for n in names if f"`{n}`" not in table) == []
