"""``scalekit_auth`` installed in a bare project by following the README: its own process, so
settings, templates and the trust store are those of a project that is not this one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scalekit_auth.emulator.management.commands import scalekit_emulator

ROOT = Path(__file__).resolve().parents[2]
SMOKE = "tests/scalekit_auth/bare_project/smoke.py"
#: What the project's own environment holds for the SDK's trust store: nothing.
TRUST_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH")


def test_the_readme_install_works_in_a_bare_project(fresh_emulator, tmp_path):
    """``check`` passes, a forged state gets the error page (400, not TemplateDoesNotExist),
    users seeded with migration_import --from-database log in through the emulator."""
    fresh_emulator.control.register_uris(
        ["http://testserver/auth/callback/"], ["http://testserver/"], None
    )
    env = {k: v for k, v in os.environ.items() if k not in TRUST_VARIABLES}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.scalekit_auth.bare_project.settings",
        SCALEKIT_ENVIRONMENT_URL=fresh_emulator.url,
        SCALEKIT_CLIENT_ID=fresh_emulator.client_id,
        SCALEKIT_CLIENT_SECRET=fresh_emulator.client_secret,
        SCALEKIT_CA_BUNDLE=str(fresh_emulator.ca_path),
        TMPDIR=str(tmp_path),  # the combined CA bundle is written there
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", SMOKE, "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "4 passed" in result.stdout


@pytest.mark.parametrize("base_dir", [None, "/srv/site"])
def test_the_emulator_state_dir_needs_no_base_dir(settings, monkeypatch, tmp_path, base_dir):
    """BASE_DIR is a startproject habit, not a Django setting: without it the command still
    parses its options and keeps its state under the working directory."""
    del settings.BASE_DIR
    if base_dir:
        settings.BASE_DIR = base_dir
    monkeypatch.chdir(tmp_path)
    parser = scalekit_emulator.Command().create_parser("manage.py", "scalekit_emulator")
    assert parser.parse_args(["--state-dir", "elsewhere"]).state_dir == "elsewhere"
    assert parser.parse_args([]).state_dir is None
    expected = Path(base_dir or tmp_path) / "var" / "emulator"
    assert scalekit_emulator.default_state_dir() == expected
