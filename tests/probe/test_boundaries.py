from __future__ import annotations

import ast
from pathlib import Path

import pytest

PROBE_DIR = Path(__file__).resolve().parents[2] / "probe"
FORBIDDEN = ("hosts", "batch_import", "django.db")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize(
    "path", sorted(PROBE_DIR.rglob("*.py")), ids=lambda path: str(path.relative_to(PROBE_DIR))
)
def test_probe_imports_neither_hosts_nor_batch_import_nor_the_orm(path: Path) -> None:
    """ARCHITECTURE §2: ``batch_import → probe`` only; probe is pure functions + HTTP."""
    offending = {
        name
        for name in imported_modules(path)
        if any(name == bad or name.startswith(f"{bad}.") for bad in FORBIDDEN)
    }
    assert offending == set()


def test_simulator_does_not_need_django() -> None:
    """The simulator runs from the command line without Django settings."""
    simulator_imports = set().union(
        *(imported_modules(path) for path in (PROBE_DIR / "simulator").glob("*.py"))
    )
    assert not {name for name in simulator_imports if name.startswith(("django", "relay_project"))}
