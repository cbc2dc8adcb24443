"""A bare project: ``django-admin startproject`` output plus the README's install snippets,
with no ``templates/`` of its own. ``test_bare_project.py`` runs ``smoke.py`` under it."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[3] / "README.md"


def readme_block(first_line: str) -> str:
    """The README's ```python block that starts with ``first_line``, as written there."""
    for block in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S):
        if block.startswith(first_line):
            return block
    raise LookupError(f"README.md has no python block starting with {first_line!r}")
