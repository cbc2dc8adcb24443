"""Fixtures of the migration tests: factories, source files, fast retry settings, commands."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import factory
import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from migration.models import ImportRecord, ImportRun
from migration.ratelimit import reset_local_buckets

#: Retries that keep the suite fast; the policy itself is tested with these numbers.
FAST_MIGRATION = {
    "BACKOFF_BASE_SECONDS": 0.01,
    "BACKOFF_MAX_SECONDS": 0.05,
    "RATE_LIMITED_PAUSE_SECONDS": 0.2,
    "RATE_LIMIT": 200.0,
    "CONCURRENCY": 4,
}


class ImportRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ImportRun

    source = factory.Sequence(lambda n: f"users=users-{n}.csv")
    status = ImportRun.Status.PENDING


class ImportRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ImportRecord

    run = factory.SubFactory(ImportRunFactory)
    kind = ImportRecord.Kind.USER
    row_number = factory.Sequence(lambda n: n + 2)
    location = factory.LazyAttribute(lambda r: f"users.csv line {r.row_number}")
    email = factory.Sequence(lambda n: f"user{n}@example.com")
    external_id = factory.Sequence(lambda n: f"legacy-{n}")
    key = factory.LazyAttribute(lambda r: r.external_id)
    payload = factory.LazyAttribute(
        lambda r: {
            "email": r.email,
            "external_id": r.external_id,
            "first_name": "",
            "last_name": "",
            "email_verified": True,
            "memberships": [{"organization": "acme", "roles": []}],
            "metadata": {},
        }
    )


@pytest.fixture
def run_factory(db):
    return ImportRunFactory


@pytest.fixture
def record_factory(db):
    return ImportRecordFactory


@pytest.fixture
def migration_settings():
    """Fast retries and an in-process rate limit high enough not to slow tests down."""
    reset_local_buckets()
    with override_settings(MIGRATION=FAST_MIGRATION):
        yield FAST_MIGRATION
    reset_local_buckets()


@pytest.fixture
def scalekit(scalekit_settings, migration_settings, emulator):
    """The emulator, fresh, with the migration pointed at it through the real SDK."""
    return emulator


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str | bytes], Path]:
    def write_file(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return write_file


class CommandResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return (
            f"CommandResult(code={self.code}, out={self.out[-2000:]!r}, err={self.err[-2000:]!r})"
        )


@pytest.fixture
def command() -> Callable[..., CommandResult]:
    """Run a management command; returns its exit code and output instead of raising."""

    def run(name: str, *args: Any, **options: Any) -> CommandResult:
        out, err = io.StringIO(), io.StringIO()
        code = 0
        try:
            call_command(name, *[str(a) for a in args], stdout=out, stderr=err, **options)
        except SystemExit as exc:
            code = int(exc.code or 0)
        except CommandError as exc:
            code = exc.returncode
            err.write(str(exc))
        return CommandResult(code, out.getvalue(), err.getvalue())

    return run


ORGANIZATIONS_CSV = (
    "external_id,display_name,metadata.region\nacme,Acme Inc,emea\nglobex,Globex,amer\n"
)
ROLES_CSV = "name,display_name,description,permissions\neditor,Editor,Edits content,content:edit|content:read\n"


@pytest.fixture
def organizations_csv(write):
    return write("organizations.csv", ORGANIZATIONS_CSV)


@pytest.fixture
def roles_csv(write):
    return write("roles.csv", ROLES_CSV)
