"""The package's layers, bottom to top; a module imports only from its own package or
from a lower layer (imports inside functions count too).

Read the order as the map of plankflux: file contracts and errors at the bottom, then
data formats, losses and optimisers, flux, the methods (evaluation, human-in-the-loop
steps, models), the synthetic generators that write the data formats, Lightning
DataModules, callbacks and table writers, the runs that wire them from configs, and the
command line on top. Two packages on the same layer do not import each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "plankflux"

LAYERS = (
    ("errors",),
    ("layout", "utils"),
    ("data", "losses", "optim"),
    ("flux",),
    ("eval", "hitl", "models"),
    ("synthetic",),
    ("datamodules",),
    ("callbacks", "tables"),
    ("runs", "review"),
    ("cli",),
)
LAYER_OF = {name: depth for depth, names in enumerate(LAYERS) for name in names}


def _part(module: str) -> str | None:
    """``plankflux.data.campaign`` -> ``data``; ``None`` for outside modules."""
    parts = module.split(".")
    return parts[1] if parts[0] == "plankflux" and len(parts) > 1 else None


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every plankflux module that ``path`` imports."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level:  # unchecked, so not allowed
            found.append((node.lineno, f"plankflux.<relative import {'.' * node.level}>"))
            continue
        if isinstance(node, ast.ImportFrom) and node.module == "plankflux":
            modules = [f"plankflux.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        found += [(node.lineno, m) for m in modules if _part(m)]
    return found


def upward_imports(package: Path = PACKAGE) -> list[str]:
    """Every import of a module from a higher layer, or from another package of its own
    layer, as ``file:line imports module``."""
    offences = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package.parent)
        own = relative.parts[1].removesuffix(".py") if len(relative.parts) > 1 else None
        if own not in LAYER_OF:
            continue  # plankflux/__init__.py
        for line, module in _imports(path):
            other = _part(module)
            if other == own:
                continue
            if other not in LAYER_OF or LAYER_OF[other] >= LAYER_OF[own]:
                offences.append(f"{relative}:{line} imports {module}")
    return offences


def test_every_package_has_a_layer():
    packages = {p.name.removesuffix(".py") for p in PACKAGE.iterdir()}
    packages = {p for p in packages if not p.startswith(("_", ".")) and p != "conf"}
    assert packages <= set(LAYER_OF), sorted(packages - set(LAYER_OF))


def test_no_upward_or_sideways_import():
    assert upward_imports() == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "from plankflux.models.ensemble import X\n",
            ["plankflux/eval/x.py:1 imports plankflux.models.ensemble"],
        ),
        (
            "def f():\n    import plankflux.runs.train\n",
            ["plankflux/eval/x.py:2 imports plankflux.runs.train"],
        ),
        ("from plankflux.flux.tables import y\nfrom plankflux.eval import z\n", []),
        (
            "from ..models import m\n",
            ["plankflux/eval/x.py:1 imports plankflux.<relative import ..>"],
        ),
    ],
)
def test_the_check_sees_top_level_and_lazy_imports(tmp_path, source, expected):
    """The checker itself: eval importing models (same layer) or runs (higher) is found,
    eval importing flux (lower) or itself is not."""
    (tmp_path / "plankflux" / "eval").mkdir(parents=True)
    (tmp_path / "plankflux" / "eval" / "x.py").write_text(source)
    assert upward_imports(tmp_path / "plankflux") == expected
