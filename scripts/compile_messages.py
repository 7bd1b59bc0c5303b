"""Compile the translation catalogs (locale/*/LC_MESSAGES/*.po) into the .mo files Django reads, without GNU gettext.

Django's compilemessages needs gettext's msgfmt, which a fresh machine may not have; `make run` must work there,
so the catalogs are compiled with Babel instead. Fuzzy entries are left out, as msgfmt leaves them out.

    python scripts/compile_messages.py [LOCALE_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent


def compile_catalogs(locale_dir: Path) -> list[Path]:
    """Write a .mo beside every .po under locale_dir (only where the .po is newer); returns the .mo files written."""
    written = []
    for po in sorted(locale_dir.glob("*/LC_MESSAGES/*.po")):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with open(po, "rb") as source:
            catalog = read_po(source, locale=po.parent.parent.name)
        staged = mo.with_name(f".{mo.name}.tmp")
        with open(staged, "wb") as out:
            write_mo(out, catalog)
        staged.replace(mo)
        written.append(mo)
    return written


if __name__ == "__main__":
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "locale"
    for path in compile_catalogs(folder):
        print(f"compiled {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
