"""manage.py readiness_check: table or JSON, exit codes that can gate CI."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from readiness.models import CheckRun

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("readiness_check", *args, stdout=out)
    except SystemExit as exit_:
        return int(exit_.code), out.getvalue()
    return 0, out.getvalue()


def test_json_lists_failing_blockers_and_exits_1():
    with override_settings(SESSION_COOKIE_AGE=1209600):
        code, output = run("--json", "--no-network")
    payload = json.loads(output)
    assert code == 1
    assert payload["ok"] is False
    assert "readiness.E011" in payload["failing_blockers"]
    result = next(r for r in payload["results"] if r["id"] == "readiness.E011")
    assert result["status"] == "fail" and result["failing_blocker"] is True
    assert result["item"] == "B06" and result["kind"] == "S"
    skipped = next(r for r in payload["results"] if r["id"] == "readiness.E054")
    assert skipped["status"] == "skip"
    assert CheckRun.objects.get(pk=payload["run"]).trigger == "command"


def test_passing_selection_exits_0():
    code, output = run("--item", "B07", "--item", "B09", "--json")
    payload = json.loads(output)
    assert code == 0 and payload["ok"] is True
    assert [r["status"] for r in payload["results"]] == ["pass", "pass"]


def test_advisory_fail_level_counts_warnings():
    code, _ = run("--item", "B05", "--json")
    assert code == 0
    code, output = run("--item", "B05", "--json", "--fail-level", "advisory")
    assert code == 1 and json.loads(output)["ok"] is False


def test_table_output():
    with override_settings(SESSION_COOKIE_AGE=1209600):
        code, output = run("--section", "core_flows", "--no-network")
    assert code == 1
    assert "E011  B06  S FAIL" in output
    assert "SESSION_COOKIE_AGE is 1209600 s" in output
    assert "failing blocker(s), marked *: readiness.E011" in output
    assert "SESSION_COOKIE_AGE is 1209600 s (336 h), above 43200 s (12 h). *" in output
    assert output.count("\n") > 15


def test_table_output_at_the_advisory_level_lists_warnings_too():
    with override_settings(SESSION_COOKIE_AGE=1209600):
        code, output = run("--item", "B06", "--no-network", "--fail-level", "advisory")
    assert code == 1
    assert "check(s) to fix: readiness.E011" in output


def test_table_says_what_changed():
    with override_settings(SESSION_COOKIE_AGE=3600):
        run("--item", "B06")
    with override_settings(SESSION_COOKIE_AGE=1209600):
        _, output = run("--item", "B06")
    assert "Changed since the last run: readiness.E011 pass -> fail" in output


def test_unknown_section_is_a_usage_error():
    with pytest.raises(CommandError, match="No readiness check matches") as error:
        call_command("readiness_check", "--section", "nope")
    assert error.value.returncode == 2


def test_no_store():
    code, _ = run("--item", "B07", "--no-store")
    assert code == 0 and not CheckRun.objects.exists()


def test_no_secret_in_any_output(scalekit_settings):
    """A full run (network included, against the emulator) prints no secret, in JSON or table."""
    from .helpers import WEBHOOK_SECRET, production, production_scalekit

    with production(
        SCALEKIT_AUTH=production_scalekit(
            ENVIRONMENT_URL=scalekit_settings["ENVIRONMENT_URL"],
            CLIENT_ID=scalekit_settings["CLIENT_ID"],
            CLIENT_SECRET=scalekit_settings["CLIENT_SECRET"],
            CA_BUNDLE=scalekit_settings["CA_BUNDLE"],
        )
    ):
        _, as_json = run("--json")
        _, as_table = run()
    results = {r["id"]: r for r in json.loads(as_json)["results"]}
    assert results["readiness.E056"]["status"] == "pass"  # the secret was used, and works
    for secret in (scalekit_settings["CLIENT_SECRET"], WEBHOOK_SECRET):
        assert secret not in as_json and secret not in as_table
        assert not CheckRun.objects.filter(results__evidence__icontains=secret).exists()
        assert not CheckRun.objects.filter(results__message__icontains=secret).exists()
