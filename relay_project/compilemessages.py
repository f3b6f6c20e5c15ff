"""``python -m relay_project.compilemessages``: compile every locale/*/LC_MESSAGES/*.po to .mo.

Pure Python (polib), so neither the demo nor the tests need the gettext binaries; the .mo
files are build output and are never committed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import polib

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"


def compile_catalogs(locale_dir: Path = LOCALE_DIR) -> list[Path]:
    compiled = []
    for po_path in sorted(locale_dir.glob("*/LC_MESSAGES/*.po")):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        polib.pofile(str(po_path)).save_as_mofile(str(mo_path))
        compiled.append(mo_path)
    return compiled


if __name__ == "__main__":
    for path in compile_catalogs():
        sys.stdout.write(f"compiled {path.relative_to(LOCALE_DIR.parent)}\n")
