"""Rules the pipeline's code keeps (ARCHITECTURE §2, issue #13): the stages act on the
adapters' typed answers and never make an adapter error of their own for control flow."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = sorted(
    [*(ROOT / "batch_import" / "stages").glob("*.py"), ROOT / "providers" / "reconcile.py"]
)


def constructed(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }


@pytest.mark.parametrize("path", PIPELINE, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_stage_builds_a_host_or_probe_error(path: Path) -> None:
    assert not constructed(path) & {"HostError", "ProbeError"}
