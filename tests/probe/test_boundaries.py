from __future__ import annotations

import ast
import os
import subprocess
import sys
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
    """The simulator runs from the command line without Django settings: besides the
    stdlib-only HTTP framework it shares with the host simulator, nothing of the project."""
    simulator_imports = set().union(
        *(imported_modules(path) for path in (PROBE_DIR / "simulator").glob("*.py"))
    )
    project = {name for name in simulator_imports if name.startswith(("django", "relay_project"))}
    assert project == {"relay_project.loopback_http"}


def test_simulators_import_no_django() -> None:
    """Importing either simulator (and its command line) loads no Django module."""
    script = (
        "import sys, probe.simulator.__main__, hosts.simulator.__main__; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
