"""Webhook delivery: secrets that cannot sign are refused, one failing event never stops
the sender thread, connections are reused and only the last deliveries are recorded."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
    answer = fresh_emulator.control.call("GET", "webhooks/deliveries")
    assert len(answer["deliveries"]) == 1 and answer["forgotten"] == 0


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


class _KeepAliveReceiver(BaseHTTPRequestHandler):
    """An HTTP/1.1 receiver that keeps connections open and notes the client port of each
    request: one port for many requests means one connection reused."""

    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers["content-length"]))
        self.server.ports.append(self.client_address[1])
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_sender_reuses_its_connection_and_records_only_the_last_deliveries():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _KeepAliveReceiver)
    server.daemon_threads = True
    server.ports = []
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    sender = WebhookSender(retry_delays=(), max_recorded=3)
    sender.configure(f"http://127.0.0.1:{server.server_port}/hook", new_secret())
    sender.start()
    try:
        for n in range(5):
            sender.emit("organization.created", "Organization", "org_1", {"n": n})
        assert wait_for(lambda: len(server.ports) == 5 and sender.snapshot()[-1]["delivered"])
    finally:
        sender.stop()
        server.shutdown()
        server.server_close()
    assert len(set(server.ports)) == 1
    recorded = sender.snapshot()
    assert [d.payload["data"]["n"] for d in sender.deliveries] == [2, 3, 4]
    assert [d["id"] for d in recorded] == [d.event_id for d in sender.deliveries]
    assert all(d["delivered"] for d in recorded) and sender.forgotten == 2
