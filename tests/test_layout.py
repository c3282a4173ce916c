"""The import graph keeps the architecture's shape (docs/architecture.md, "Layout"): the domain
below the Dagster glue, its packages in flow order, the tooling beside them, no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The domain packages in the order a transaction meets them; a package imports only earlier ones.
DOMAIN_ORDER = ["kernel", "store", "ingest", "labels", "features", "ml", "reporting", "tooling"]
KERNEL = {"config", "windows", "batching"}
SHARED_GLUE = {
    "keys",
    "partitions",
    "automation",
    "resources",
    "owners",
    "runs",
    "metadata",
    "freshness",
}
PROJECT = ("fraudstream", "pipeline", "definitions")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports (``from a import b`` counts as ``a.b`` when that is one)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


GRAPH = {
    module_name(path): imports_of(path)
    for path in [*ROOT.glob("fraudstream/**/*.py"), *ROOT.glob("pipeline/**/*.py")]
}
MODULES = set(GRAPH) | {"definitions"}


def project_imports(module: str) -> set[str]:
    return {name for name in GRAPH[module] if name in MODULES and name != module}


def domain_layer(module: str) -> int:
    """The position of a ``fraudstream`` module's package in DOMAIN_ORDER."""
    parts = module.split(".")
    package = parts[1] if len(parts) > 1 else "kernel"
    return DOMAIN_ORDER.index("kernel" if package in KERNEL else package)


DOMAIN = sorted(m for m in GRAPH if m.startswith("fraudstream.") and "." in m)


@pytest.mark.parametrize("module", DOMAIN)
def test_a_domain_module_imports_only_its_own_package_and_earlier_ones(module: str) -> None:
    later = {
        name
        for name in project_imports(module)
        if name.split(".")[0] != "fraudstream" or domain_layer(name) > domain_layer(module)
    }
    assert not later, f"{module} imports {sorted(later)}, later in the flow or outside the domain"


@pytest.mark.parametrize("module", DOMAIN)
def test_the_domain_never_imports_dagster_and_only_the_store_imports_the_driver(
    module: str,
) -> None:
    external = {name.split(".")[0] for name in GRAPH[module]}
    if not module.startswith("fraudstream.tooling"):  # the tooling runs a Dagster instance
        assert "dagster" not in external
    if not module.startswith("fraudstream.store"):
        assert not external & {"pymongo", "gridfs", "bson"}, f"{module} reaches MongoDB directly"


GLUE = sorted(m for m in GRAPH if m.startswith("pipeline."))


@pytest.mark.parametrize("module", GLUE)
def test_glue_never_imports_other_glue_only_the_shared_pieces(module: str) -> None:
    glue = {name for name in project_imports(module) if not name.startswith("fraudstream")}
    allowed = {f"pipeline.{name}" for name in SHARED_GLUE} | {"pipeline"}
    assert glue <= allowed, f"{module} imports {sorted(glue - allowed)}: refer to assets by key"


def test_there_is_no_import_cycle() -> None:
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for name in project_imports(module) & set(GRAPH):
            if state.get(name) == "open":
                raise AssertionError(" -> ".join([*path, module, name]))
            if name not in state:
                visit(name, [*path, module])
        state[module] = "done"

    for module in GRAPH:
        if module not in state:
            visit(module, [])


def test_every_package_says_what_it_owns() -> None:
    packages = [p for p in ROOT.glob("fraudstream/**/__init__.py")]
    packages += [*ROOT.glob("pipeline/**/__init__.py")]
    for init in packages:
        docstring = ast.get_docstring(ast.parse(init.read_text()))
        assert docstring and len(docstring) > 80, f"{init.relative_to(ROOT)} lacks its docstring"


def test_the_largest_module_stays_small() -> None:
    sizes = {
        path.relative_to(ROOT): len(path.read_text().splitlines())
        for directory in (*PROJECT, "tests", "bench")
        for path in ROOT.glob(f"{directory}/**/*.py")
    }
    largest = max(sizes, key=sizes.__getitem__)
    assert sizes[largest] < 400, f"{largest} has {sizes[largest]} lines: split it by responsibility"
