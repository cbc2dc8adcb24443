"""``migration.testing`` for a project other than this repository's demo: its directory, settings
module and Celery app are parameters (this repository's are only the defaults)."""

from __future__ import annotations

import json
import textwrap

import pytest

from migration.testing import (
    CELERY_APP,
    PROJECT_DIR,
    SETTINGS_MODULE,
    ServiceUnavailable,
    celery_worker,
    manage,
    project_env,
    redis_server,
)


@pytest.fixture
def other_project(tmp_path):
    """A project that is not this repository: a manage.py reporting where and how it runs, and
    a Celery app named like the project."""
    (tmp_path / "manage.py").write_text(
        textwrap.dedent(
            """\
            import json, os, sys
            print(json.dumps({"cwd": os.getcwd(), "settings": os.environ["DJANGO_SETTINGS_MODULE"],
                              "args": sys.argv[1:]}))
            """
        )
    )
    (tmp_path / "mysite_settings.py").write_text('SECRET_KEY = "other"\nINSTALLED_APPS = []\n')
    (tmp_path / "mysite.py").write_text(
        textwrap.dedent(
            """\
            import os
            from pathlib import Path
            from celery import Celery
            app = Celery("mysite", broker=os.environ["BROKER"])
            Path(os.environ["LOADED"]).write_text(os.getcwd())
            """
        )
    )
    return tmp_path


def test_defaults_are_this_repository(monkeypatch):
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    env = project_env()
    assert (SETTINGS_MODULE, CELERY_APP) == ("config.test_settings", "config")
    assert env["DJANGO_SETTINGS_MODULE"] == SETTINGS_MODULE
    assert env["PYTHONPATH"].split(":")[0] == str(PROJECT_DIR)
    assert (PROJECT_DIR / "manage.py").is_file()


def test_manage_runs_another_projects_manage_py(other_project):
    env = project_env(project_dir=other_project, settings_module="mysite.test_settings")
    assert env["PYTHONPATH"].split(":")[0] == str(other_project)
    done = manage("check", "--deploy", env=env, project_dir=other_project)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "cwd": str(other_project),
        "settings": "mysite.test_settings",
        "args": ["check", "--deploy"],
    }


@pytest.mark.celery
def test_celery_worker_of_another_projects_app(other_project, tmp_path):
    try:
        with redis_server() as url:
            loaded = tmp_path / "loaded"
            env = project_env(
                project_dir=other_project,
                settings_module="mysite_settings",
                BROKER=url,
                LOADED=str(loaded),
            )
            with celery_worker(
                "other",
                env,
                concurrency=1,
                logdir=str(tmp_path),
                app="mysite",
                project_dir=other_project,
            ) as worker:
                assert " ready." in worker.log()
                assert loaded.read_text() == str(other_project)
    except ServiceUnavailable as exc:
        pytest.skip(str(exc))
