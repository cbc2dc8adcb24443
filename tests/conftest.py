"""Fixtures shared by every app's tests: a running Scalekit emulator and an SDK client on it."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import override_settings
from scalekit import ScalekitClient

from scalekit_auth.client import reset_client
from scalekit_auth.emulator.testing import emulator_settings, start_emulator


@pytest.fixture(scope="session")
def emulator():
    """A Scalekit emulator on a free port for the whole test session (state is reset by `sdk`)."""
    with start_emulator() as running:
        yield running


@pytest.fixture
def fresh_emulator(emulator):
    """The session's emulator, reset to a fresh environment for this test."""
    emulator.reset()
    return emulator


@pytest.fixture
def sdk(fresh_emulator) -> ScalekitClient:
    """The real SDK client, connected to a freshly reset emulator over its real port."""
    return ScalekitClient(
        fresh_emulator.url, fresh_emulator.client_id, fresh_emulator.client_secret
    )


@pytest.fixture
def scalekit_settings(fresh_emulator):
    """Point ``SCALEKIT_AUTH`` (and so ``scalekit_auth.client.get_client()``) at the emulator."""
    merged = {**getattr(settings, "SCALEKIT_AUTH", {}), **emulator_settings(fresh_emulator)}
    with override_settings(SCALEKIT_AUTH=merged):
        reset_client()
        yield merged
    reset_client()


@pytest.fixture(scope="session")
def redis_server():
    """A private redis-server on a free port for the test session; yields its URL."""
    from migration.testing import redis_server as start_redis

    with start_redis() as url:
        yield url
