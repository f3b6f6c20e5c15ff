"""`.env.example` and the code agree: each variable it lists is read, each one read is listed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CODE_DIRS = ("relay_project", "batch_import", "hosts", "probe", "model_packs")
READERS = {"env_str", "env_bool", "env_int", "env_float", "env_list", "env_database", "env_raw"}
LISTED = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=", re.MULTILINE)


def _variables_read_by_the_code() -> set[str]:
    found: set[str] = set()
    for folder in CODE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                first = node.args[0]
                if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                    continue
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                environ_get = (
                    name in ("get", "getenv")
                    and isinstance(func, ast.Attribute)
                    and "environ" in ast.unparse(func.value) + name
                )
                if name in READERS or environ_get:
                    found.add(first.value)
    return found


def _variables_listed() -> set[str]:
    return set(LISTED.findall((ROOT / ".env.example").read_text()))


def test_every_variable_the_code_reads_is_in_env_example():
    missing = _variables_read_by_the_code() - _variables_listed()
    assert not missing, f"add to .env.example: {sorted(missing)}"


def test_every_variable_in_env_example_is_read_by_the_code():
    unused = _variables_listed() - _variables_read_by_the_code()
    assert not unused, f"not read by any setting: {sorted(unused)}"


def test_the_scan_sees_the_settings():
    # Guards the scanner itself: a broken walk would make both tests above pass vacuously.
    assert {"SECRET_KEY", "DATABASE_URL", "RELAY_WEB_WORKERS", "DEMO_ADDR"} <= (
        _variables_read_by_the_code()
    )
