"""The test helpers: ``start_emulator()`` any number of times in one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from scalekit import ScalekitClient
from scalekit.v1.organizations import organizations_pb2

from scalekit_auth.emulator.testing import TRUST_VARIABLES, start_emulator

ROOT = Path(__file__).resolve().parents[2]


def organizations_after_one_create(emulator) -> int:
    client = ScalekitClient(emulator.url, emulator.client_id, emulator.client_secret)
    client.organization.create_organization(
        organizations_pb2.CreateOrganization(display_name="Acme")
    )
    return client.organization.list_organizations(page_size=10)[0].total_size


def test_two_emulators_in_a_fresh_process_are_both_reachable_by_the_sdk():
    """In a new process, so that the first emulator is the one whose CA grpc-core reads."""
    script = textwrap.dedent(
        """
        import json, os
        from scalekit import ScalekitClient
        from scalekit.v1.organizations import organizations_pb2
        from scalekit_auth.emulator.testing import start_emulator

        def count(emulator):
            client = ScalekitClient(emulator.url, emulator.client_id, emulator.client_secret)
            client.organization.create_organization(
                organizations_pb2.CreateOrganization(display_name="Acme")
            )
            return client.organization.list_organizations(page_size=10)[0].total_size

        result = {}
        with start_emulator() as first:
            result["first"] = count(first)
            result["first_ca"] = os.environ["REQUESTS_CA_BUNDLE"]
        result["after_first"] = os.environ.get("REQUESTS_CA_BUNDLE")
        with start_emulator() as second:
            result["second"] = count(second)
            result["same_ca"] = str(second.ca_path) == result["first_ca"]
            result["ca_exists"] = second.ca_path.is_file()
        print(json.dumps(result))
        """
    )
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in TRUST_VARIABLES and not name.startswith("DJANGO")
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {
        "first": 1,
        "first_ca": result["first_ca"],
        "after_first": None,
        "second": 1,
        "same_ca": True,
        "ca_exists": True,
    }


def test_emulators_without_state_dir_share_the_session_ca(emulator):
    before = {name: os.environ.get(name) for name in TRUST_VARIABLES}
    for _ in range(2):
        with start_emulator() as another:
            assert another.ca_path == emulator.ca_path and another.port != emulator.port
            assert organizations_after_one_create(another) == 1
    assert {name: os.environ.get(name) for name in TRUST_VARIABLES} == before
    assert emulator.ca_path.is_file()


def test_an_emulator_with_another_ca_is_refused_clearly(emulator, tmp_path):
    before = {name: os.environ.get(name) for name in TRUST_VARIABLES}
    refused = pytest.raises(RuntimeError, match="reads its roots .* once per process")
    with refused as excinfo, start_emulator(state_dir=tmp_path):
        pass
    assert str(tmp_path) in str(excinfo.value)
    assert {name: os.environ.get(name) for name in TRUST_VARIABLES} == before
