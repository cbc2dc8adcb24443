"""Webhook delivery: secrets that cannot sign are refused, and one failing event never stops
the sender thread."""

from __future__ import annotations

import pytest

from scalekit_auth.emulator.webhooks import WebhookSender, new_secret, secret_key

from .conftest import wait_for


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        ("whsec_abc", "not standard base64"),
        ("whsec_a_b=", "not standard base64"),
        ("whsec_", "must look like whsec_"),
        ("abc", "must look like whsec_"),
    ],
)
def test_secret_key_refuses_secrets_that_cannot_sign(secret, reason):
    with pytest.raises(ValueError, match=reason):
        secret_key(secret)


def test_control_api_refuses_a_bad_secret_and_keeps_a_good_one(fresh_emulator, receiver):
    url = f"http://127.0.0.1:{receiver.server_port}/hook"
    with pytest.raises(RuntimeError, match="400.*not standard base64") as excinfo:
        fresh_emulator.control.configure_webhooks(url, "whsec_abc")
    assert "whsec_abc" not in str(excinfo.value)
    assert fresh_emulator.webhooks.url == ""
    fresh_emulator.control.configure_webhooks(url, new_secret())
    fresh_emulator.webhooks.emit("organization.created", "Organization", "org_1", {})
    assert wait_for(lambda: receiver.received)


def test_a_delivery_that_raises_is_recorded_and_later_events_still_go_out(receiver):
    sender = WebhookSender(retry_delays=())
    sender.start()
    try:
        url = f"http://127.0.0.1:{receiver.server_port}/hook"
        # A secret that slipped past configure() (set directly): signing it raises.
        sender.url, sender.secret = url, "whsec_abc"
        sender.emit("organization.created", "Organization", "org_1", {"n": 1})
        sender.configure(url, new_secret())
        sender.emit("organization.created", "Organization", "org_1", {"n": 2})
        assert wait_for(lambda: [d["delivered"] for d in sender.snapshot()] == [False, True])
    finally:
        sender.stop()
    first, second = sender.snapshot()
    assert first["error"].startswith("emulator error: ValueError") and first["attempts"] == 0
    assert second["error"] == "" and len(receiver.received) == 1
