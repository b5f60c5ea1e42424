"""The code's structure, as docs/architecture.md draws it, checked over the import graph.

Every ``filespace`` import in ``src/`` counts, wherever it stands: at the top, inside a
function (lazy) or under ``TYPE_CHECKING``. A module may import its own layer and the
layers below it, never one above; the interfaces import only the public package; no
two modules import each other, however indirectly; no module grows past the size at
which it stops having one job.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "filespace"

# Bottom to top; a module belongs to the first layer with a prefix matching its name.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "ground",
        (
            "filespace.errors",
            "filespace.paths",
            "filespace.keys",
            "filespace.sealing",
            "filespace.runtime",
            "filespace.redaction",
            "filespace.models",
            "filespace.connect.models",
            "filespace.connect.validation",
        ),
    ),
    ("meta", ("filespace.meta",)),
    ("clients", ("filespace.objects",)),
    ("data path", ("filespace.io", "filespace.resolver")),
    ("features", ("filespace.connect", "filespace.blocks")),
    ("namespace", ("filespace.fs",)),
    (
        "public face",
        (
            "filespace.space",
            "filespace.locations",
            "filespace.shared",
            "filespace.rotation",
            "filespace.caches",
            "filespace",
        ),
    ),
    ("interfaces", ("filespace.cli", "filespace.fsspec", "filespace.fuse", "filespace.__main__")),
]
INTERFACES = ("filespace.cli", "filespace.fsspec", "filespace.fuse", "filespace.__main__")
STANDALONE = ("filespace.testing",)  # a supported test helper: imports nothing of filespace
MAX_LINES = 500


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[str]:
    """Every ``filespace`` module ``name`` imports, resolved to a module of the package."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # "from filespace.cli import output" imports the module filespace.cli.output.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            if target == "filespace" or target.startswith("filespace."):
                module = target
                while module not in MODULES:
                    module = module.rpartition(".")[0]
                yield module


GRAPH = {name: set(_imports(name, path)) - {name} for name, path in MODULES.items()}


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or (prefix != "filespace" and name.startswith(prefix + "."))


def layer_of(name: str) -> int:
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(_matches(name, prefix) for prefix in prefixes):
            return rank
    raise AssertionError(f"{name} belongs to no layer: add it to LAYERS and docs/architecture.md")


def test_every_module_has_a_layer() -> None:
    for name in MODULES:
        if not name.startswith(STANDALONE):
            layer_of(name)


def test_nothing_imports_upward() -> None:
    upward = [
        f"{name} ({LAYERS[layer_of(name)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for name, targets in GRAPH.items()
        if not name.startswith(STANDALONE)
        for target in sorted(targets)
        if not target.startswith(STANDALONE) and layer_of(target) > layer_of(name)
    ]
    assert upward == []


def test_interfaces_import_only_the_public_package() -> None:
    reaching_in = [
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        if name.startswith(INTERFACES)
        for target in sorted(targets)
        if target != "filespace" and not target.startswith(INTERFACES)
    ]
    assert reaching_in == []


def test_the_library_never_imports_the_test_helper() -> None:
    users = [name for name, targets in GRAPH.items() if targets & set(STANDALONE)]
    assert users == []
    assert GRAPH["filespace.testing"] == set()


def test_no_import_cycles() -> None:
    # Tarjan's strongly connected components over the module graph.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(GRAPH[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            # A package importing its own submodules is not a cycle of behaviour:
            # an __init__ that re-exports is expected to.
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    assert cycles == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_stays_small(name: str) -> None:
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines: split it by concept"


def test_the_checker_sees_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from filespace.fs import Filesystem\n"
        "def f():\n    from filespace.meta import engine\n    import filespace.io.cache\n"
    )
    found = set(_imports("filespace.probe", probe))
    assert found == {"filespace.fs", "filespace.meta.engine", "filespace.io.cache"}
