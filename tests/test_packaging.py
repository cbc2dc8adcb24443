"""What a project gets from ``pip install``: the wheel built from this repository, and the
README's Celery snippet for the apps' periodic tasks."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("scalekit_auth", "migration", "readiness")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """The wheel of a copy of the checkout (a build in the checkout itself could pick up the
    stale files of an older ``build/``), built offline with the venv's setuptools."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "var", ".*")
    for name in ("pyproject.toml", "README.md", "manage.py"):
        shutil.copy2(ROOT / name, source / name)
    for name in (*APPS, "config", "tests", "bench", "templates"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            str(source),
            "-w",
            str(work / "dist"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (path,) = (work / "dist").glob("scalekit_django_migration-*.whl")
    with zipfile.ZipFile(path) as archive:
        yield archive


def app_data_files() -> set[str]:
    """Every template and static file of the three apps in the checkout."""
    return {
        path.relative_to(ROOT).as_posix()
        for app in APPS
        for folder in ("templates", "static")
        for path in (ROOT / app).rglob(f"{folder}/**/*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_the_wheel_holds_the_apps_templates(wheel):
    names = set(wheel.namelist())
    expected = app_data_files()
    assert {
        "scalekit_auth/templates/scalekit_auth/login.html",
        "scalekit_auth/templates/scalekit_auth/error.html",
        "readiness/templates/admin/readiness/dashboard.html",
        "readiness/templates/readiness/report.html",
        "readiness/templates/readiness/report.md",
    } <= expected
    assert expected - names == set()
    assert "migration/migrations/0001_initial.py" in names
    assert "scalekit_auth/emulator/server.py" in names


def test_the_wheel_holds_no_demo_project_tests_or_benchmarks(wheel):
    top_level = {name.split("/", 1)[0] for name in wheel.namelist()}
    assert {name for name in top_level if not name.endswith(".dist-info")} == set(APPS)
    (listed,) = [n for n in wheel.namelist() if n.endswith(".dist-info/top_level.txt")]
    assert set(wheel.read(listed).decode().split()) == set(APPS)


def readme_block(heading: str, marker: str) -> str:
    """The first ```python block under ``heading`` in README.md that contains ``marker``."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split(heading, 1)[1]
    for block in re.findall(r"```python\n(.*?)```", section, flags=re.S):
        if marker in block:
            return block
    raise AssertionError(f"no python block with {marker!r} under {heading!r}")


def test_the_readme_beat_schedule_is_the_one_the_demo_runs_and_names_real_tasks(settings):
    from celery import current_app

    block = readme_block("## Celery", "CELERY_BEAT_SCHEDULE")
    tree = ast.parse(block)
    assignment = next(
        node
        for node in tree.body
        if isinstance(node, ast.Assign) and node.targets[0].id == "CELERY_BEAT_SCHEDULE"
    )
    schedule = ast.literal_eval(assignment.value)
    assert schedule == settings.CELERY_BEAT_SCHEDULE
    for app in APPS:
        __import__(f"{app}.tasks")
    registered = set(current_app.tasks)
    assert {entry["task"] for entry in schedule.values()} <= registered
    assert "-A config" not in (ROOT / "README.md").read_text()
    assert "-A config" not in (ROOT / "migration" / "README.md").read_text()
