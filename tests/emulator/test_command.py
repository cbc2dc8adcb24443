"""``manage.py scalekit_emulator``, run as a real process: banner, state directory, URI and
webhook flags, refusals with exit code 1, and a clean exit on SIGTERM."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from scalekit import ScalekitClient
from scalekit.v1.organizations import organizations_pb2

from scalekit_auth.emulator.control import ControlClient
from scalekit_auth.emulator.server import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from scalekit_auth.emulator.webhooks import new_secret

from .conftest import AFTER_LOGOUT, CALLBACK, wait_for

ROOT = Path(__file__).resolve().parents[2]
BANNER = re.compile(
    r"SCALEKIT_ENVIRONMENT_URL=https://localhost:(?P<port>\d+) "
    r"SCALEKIT_CLIENT_ID=(?P<client_id>\S+) SCALEKIT_CLIENT_SECRET=(?P<client_secret>\S+) "
    r"SCALEKIT_CA_BUNDLE=(?P<ca>\S+)( SCALEKIT_WEBHOOK_SECRET=(?P<webhook_secret>whsec_\S+))?"
)


def command(*args: str) -> list[str]:
    return [sys.executable, "manage.py", "scalekit_emulator", *args]


def env() -> dict[str, str]:
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings"}


@contextlib.contextmanager
def running(*args: str) -> Iterator[tuple[subprocess.Popen, re.Match]]:
    """The command on a free port; yields the process and its parsed banner, then SIGTERMs it
    and checks that it exited cleanly."""
    process = subprocess.Popen(
        command("--port", "0", *args),
        cwd=ROOT,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([process.stdout], [], [], 60)
        line = process.stdout.readline() if ready else ""
        banner = BANNER.fullmatch(line.rstrip("\n"))
        assert banner, f"no banner: {line!r} {process.stderr.read() if not ready else ''}"
        yield process, banner
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        process.stdout.close()
        process.stderr.close()


def with_session_certificates(emulator, state_dir: Path) -> Path:
    """This process's SDK trusts only the session emulator's CA: give the command the same."""
    state_dir.mkdir()
    for name in ("ca.pem", "server.pem", "server.key"):
        shutil.copy(emulator.ca_path.parent / name, state_dir / name)
    return state_dir


def test_banner_state_dir_and_flags_through_the_sdk(emulator, receiver, tmp_path):
    state_dir = with_session_certificates(emulator, tmp_path / "state")
    secret = new_secret()
    hook = f"http://127.0.0.1:{receiver.server_port}/hook"
    with running(
        "--state-dir",
        str(state_dir),
        "--persist",
        "--redirect-uri",
        CALLBACK,
        "--post-logout-redirect-uri",
        AFTER_LOGOUT,
        "--webhook-url",
        hook,
        "--webhook-secret",
        secret,
    ) as (process, banner):
        assert banner["client_id"] == DEFAULT_CLIENT_ID
        assert banner["client_secret"] == DEFAULT_CLIENT_SECRET
        assert banner["ca"] == str(state_dir / "ca.pem")
        assert banner["webhook_secret"] == secret
        url = f"https://localhost:{banner['port']}"
        control = ControlClient(url, banner["ca"])
        control.reset()  # the command's URIs and webhook survive a reset
        assert control.register_uris()["redirect_uris"] == [CALLBACK]
        sdk = ScalekitClient(url, banner["client_id"], banner["client_secret"])
        sdk.organization.create_organization(
            organizations_pb2.CreateOrganization(display_name="Acme")
        )
        assert wait_for(lambda: receiver.received)
        headers, body = receiver.received[0]
        assert sdk.verify_webhook_payload(secret, headers, body) is True
        assert json.loads(body)["type"] == "organization.created"
    assert process.returncode == 0
    assert (state_dir / "emulator.sqlite3").is_file()
    assert (state_dir / "ca.pem").read_bytes() == emulator.ca_path.read_bytes()


def test_a_generated_webhook_secret_is_printed_and_a_new_state_dir_gets_a_ca(tmp_path):
    state_dir = tmp_path / "new-state"
    with running("--state-dir", str(state_dir), "--webhook-url", "http://127.0.0.1:9/hook") as (
        _process,
        banner,
    ):
        assert banner["webhook_secret"].startswith("whsec_")
        assert (state_dir / "ca.pem").is_file() and (state_dir / "server.key").is_file()
        assert (
            ControlClient(f"https://localhost:{banner['port']}", state_dir / "ca.pem").state()[
                "roles"
            ]
            == 2
        )


def test_sigterm_stops_it_cleanly_and_frees_the_port(tmp_path):
    with running("--state-dir", str(tmp_path)) as (process, banner):
        port = int(banner["port"])
        process.send_signal(signal.SIGTERM)
        process.wait(20)
        stderr = process.stderr.read()
    assert process.returncode == 0 and "Traceback" not in stderr
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--webhook-url", "http://127.0.0.1:9/hook", "--webhook-secret", "whsec_abc"],
            "CommandError: the webhook secret's part after whsec_ is not standard base64",
        ),
        (["--redirect-uri", "localhost:8000/cb"], "is not an absolute http(s) URI"),
    ],
)
def test_bad_flags_exit_1_with_a_command_error(tmp_path, flags, message):
    done = subprocess.run(
        command("--port", "0", "--state-dir", str(tmp_path), *flags),
        cwd=ROOT,
        env=env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert message in done.stderr and "whsec_abc" not in done.stderr
    assert done.stdout == ""


def test_a_port_in_use_exits_1_with_a_command_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            command("--port", str(port), "--state-dir", str(tmp_path)),
            cwd=ROOT,
            env=env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert f"CommandError: cannot listen on localhost:{port}:" in done.stderr
    assert "Traceback" not in done.stderr
