"""The probe registry: enough real probes, of every kind, each tied to a checklist item and each
tested both passing and failing."""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections import Counter

import pytest

from readiness import catalogue
from readiness.registry import (
    DEPLOY,
    ERROR,
    NETWORK,
    REQUEST,
    SETTINGS,
    Probe,
    ProbeContext,
    ProbeResult,
    all_probes,
    register,
)
from readiness.runner import execute

from . import helpers


def test_at_least_35_probes_of_every_kind():
    probes = all_probes()
    kinds = Counter(p.kind for p in probes)
    assert len(probes) >= 35
    assert kinds[SETTINGS] >= 10 and kinds[DEPLOY] >= 5
    assert kinds[REQUEST] >= 5 and kinds[NETWORK] >= 3


def test_every_probe_proves_a_catalogue_item_that_is_not_manual():
    items = {item.key: item for _, item in catalogue.all_items()}
    for probe in all_probes():
        assert probe.item in items, probe.id
        assert items[probe.item].kind != catalogue.MANUAL, probe.id


def test_every_automated_item_has_a_probe():
    proven = {p.item for p in all_probes()}
    for _, item in catalogue.all_items():
        if item.kind in (catalogue.AUTO, catalogue.HYBRID):
            assert item.key in proven, f"{item.key} is {item.kind} but no probe proves it"


def test_catalogue_has_the_required_sections():
    titles = [s.title for s in catalogue.SECTIONS]
    for expected in (
        "Quick checks",
        "Customization",
        "Core auth flows",
        "Auth methods",
        "Error handling",
        "Enterprise SSO",
        "JIT provisioning",
        "SCIM",
        "Admin portal",
        "Network",
        "User and organization management",
        "RBAC",
        "MCP",
        "Monitoring",
        "Reliability",
        "Phase 1: audit and export",
        "Phase 2: import",
        "Phase 3: redirects and roles",
        "Phase 4: application code",
        "Phase 5: deploy and monitor",
    ):
        assert expected in titles


def test_every_probe_is_tested_passing_and_failing():
    """Each probe id has a test asserting a pass and one asserting a fail or warning."""
    package = importlib.import_module("tests.readiness")
    for module in pkgutil.iter_modules(package.__path__):
        if module.name.startswith("test_probes_"):
            importlib.import_module(f"tests.readiness.{module.name}")
    missing = []
    for probe in all_probes():
        outcomes = helpers.COVERAGE.get(probe.id, set())
        if "pass" not in outcomes or not outcomes & {"fail", "warn"}:
            missing.append(f"{probe.id}: {sorted(outcomes)}")
    assert not missing, "probes without a passing and a failing test: " + ", ".join(missing)


@pytest.mark.parametrize(
    ("probe_id", "message"),
    [
        ("readiness.X001", "must look like readiness.E001"),
        ("readiness.E001x", "must look like readiness.E001"),
    ],
)
def test_bad_probe_ids_are_refused(probe_id, message):
    with pytest.raises(ValueError, match=message):
        Probe(id=probe_id, item="A01", title="t", kind=SETTINGS, func=lambda ctx: None)


def test_severity_follows_the_id():
    with pytest.raises(ValueError, match="E ids are blockers"):
        Probe(
            id="readiness.E999",
            item="A01",
            title="t",
            kind=SETTINGS,
            func=lambda ctx: None,
            severity="advisory",
        )


def test_two_probes_cannot_share_an_id():
    with pytest.raises(ValueError, match="two probes share the id readiness.E001"):
        register(
            Probe(
                id="readiness.E001", item="A01", title="other", kind=SETTINGS, func=lambda ctx: None
            )
        )


def test_unknown_outcome_refused():
    with pytest.raises(ValueError, match="unknown probe outcome 'ok'"):
        ProbeResult("ok", "fine")


def test_a_raising_probe_reports_an_error_without_its_text(caplog):
    def leaky(ctx: ProbeContext) -> ProbeResult:
        raise RuntimeError("connection to https://skc_x:sks_super_secret@host failed")

    probe = Probe(id="readiness.E998", item="A01", title="leaky", kind=SETTINGS, func=leaky)
    with caplog.at_level(logging.ERROR, logger="readiness.runner"):
        outcome = execute(probe, ProbeContext())
    assert outcome.status == ERROR
    assert outcome.result.message == "The probe raised RuntimeError; see the server log."
    assert "sks_super_secret" not in repr(outcome.result)
    assert "readiness probe readiness.E998 raised" in caplog.text


def test_production_helper_puts_the_environment_back():
    import os

    before = {k: v for k, v in os.environ.items() if k.startswith("SCALEKIT_")}
    with helpers.production(env={"SCALEKIT_CLIENT_SECRET": "x", "SCALEKIT_ENVIRONMENT_URL": None}):
        assert os.environ["SCALEKIT_CLIENT_SECRET"] == "x"
        assert "SCALEKIT_ENVIRONMENT_URL" not in os.environ
    assert {k: v for k, v in os.environ.items() if k.startswith("SCALEKIT_")} == before
