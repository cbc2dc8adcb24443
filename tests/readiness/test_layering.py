"""readiness is product code: it runs in web and Celery workers, so it imports scalekit_auth's
runtime modules only (never its test helpers or the emulator), and none of its modules takes the
name of a library it imports."""

from __future__ import annotations

import ast
from pathlib import Path

import readiness

PACKAGE = Path(readiness.__file__).parent
NOT_FOR_PRODUCTION = ("scalekit_auth.testing", "scalekit_auth.emulator")


def absolute_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def modules() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts]


def test_no_test_helper_or_emulator_is_imported():
    found = {
        f"{path.relative_to(PACKAGE.parent)}: {name}"
        for path in modules()
        for name in absolute_imports(path)
        if name.startswith(NOT_FOR_PRODUCTION)
    }
    assert not found


def test_no_module_takes_the_name_of_a_library_it_uses():
    libraries = {name.split(".")[0] for path in modules() for name in absolute_imports(path)}
    shadowing = sorted(
        str(path.relative_to(PACKAGE.parent)) for path in modules() if path.stem in libraries
    )
    assert not shadowing
