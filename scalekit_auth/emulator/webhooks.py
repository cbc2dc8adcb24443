"""Webhook delivery, signed the Standard Webhooks way that the SDK's ``verify_webhook_payload``
checks: ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature: v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}">``, keyed with the base64 part of a ``whsec_...`` secret.

Events are queued and sent by one background thread over one HTTP session (connections to the
receiver are reused), retried with back-off on failure (``retry_delays``). The last
``MAX_RECORDED`` (1,000) deliveries are recorded, payload and attempts, so tests can look at what
was delivered; older records are forgotten and counted (``forgotten``), so a long import does not
keep every event in memory. Events not sent yet stay queued (as their JSON text) until they are.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import http.cookiejar
import json
import logging
import os
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import requests

from . import ids

logger = logging.getLogger("scalekit_auth.emulator")

# How many deliveries (with their payloads) are kept for inspection.
MAX_RECORDED = 1_000


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<standard base64>`` secret.

    Raises ``ValueError`` saying what is wrong (never echoing the secret): the SDK's
    ``verify_webhook_payload`` splits on ``_`` and base64-decodes the second part, so only a
    non-empty standard base64 key after the prefix can be verified by a receiver.
    """
    prefix, _, encoded = secret.partition("_")
    if prefix != "whsec" or not encoded:
        raise ValueError("the webhook secret must look like whsec_<standard base64>")
    try:
        key = base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise ValueError(
            f"the webhook secret's part after whsec_ is not standard base64 ({exc})"
        ) from exc
    if not key:
        raise ValueError("the webhook secret's key is empty")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    key = secret_key(secret)
    digest = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def new_secret() -> str:
    """A ``whsec_`` secret. Standard base64 never contains ``_``, on which the SDK splits."""
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


@dataclass
class Delivery:
    event_id: str
    type: str
    url: str = field(default="", repr=False)
    secret: str = field(default="", repr=False)
    generation: int = 0
    attempts: int = 0
    status: int | None = None
    error: str = ""
    delivered: bool = False
    # The payload as sent, serialized once: a queued event costs its JSON text, not a tree of
    # dicts (an import of 20,000 users queues that many events faster than they are sent).
    body: str = field(default="", repr=False)

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body) if self.body else {}


class WebhookSender:
    def __init__(
        self, retry_delays: tuple[float, ...] = (0.5, 2.0, 5.0), max_recorded: int = MAX_RECORDED
    ) -> None:
        if max_recorded < 1:
            raise ValueError(f"max_recorded must be at least 1, not {max_recorded!r}")
        self.url = ""
        self.secret = ""
        self.retry_delays = retry_delays
        # The last max_recorded deliveries; `forgotten` counts those that fell out.
        self.deliveries: deque[Delivery] = deque(maxlen=max_recorded)
        self.forgotten = 0
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        # Bumped by reset(): deliveries queued before it are dropped, never sent to a new URL.
        self._generation = 0

    def configure(self, url: str, secret: str) -> None:
        """Deliver later events to ``url`` signed with ``secret``; an empty ``url`` stops
        delivery. Raises ``ValueError`` for a secret that cannot sign (checked here, so that a
        bad one is refused up front instead of failing every delivery)."""
        if url:
            secret_key(secret)
        self.url, self.secret = url, secret

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="emulator-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def emit(
        self, event_type: str, object_type: str, organization_id: str, data: dict[str, Any]
    ) -> None:
        if not self.url:
            return
        now = dt.datetime.now(dt.UTC)
        payload = {
            "spec_version": "1",
            "id": ids.new_id("evt"),
            "type": event_type,
            "object": object_type,
            "occurred_at": now.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z",
            "environment_id": "env_000000000000000001",
            "organization_id": organization_id,
            "data": data,
        }
        delivery = Delivery(
            event_id=payload["id"],
            type=event_type,
            url=self.url,
            secret=self.secret,
            generation=self._generation,
            body=json.dumps(payload, separators=(",", ":")),
        )
        with self._lock:
            if len(self.deliveries) == self.deliveries.maxlen:
                self.forgotten += 1
            self.deliveries.append(delivery)
        self._queue.put(delivery)

    def _run(self) -> None:
        with requests.Session() as session:
            # A webhook sender sends no cookies back to the receiver.
            session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
            while True:
                delivery = self._queue.get()
                if delivery is None:
                    return
                try:
                    self._deliver(delivery, session)
                except Exception as exc:
                    # Recorded on the delivery; the one sender thread must outlive any one event.
                    delivery.error = f"emulator error: {type(exc).__name__}: {exc}"
                    logger.exception("emulator: webhook delivery %s failed", delivery.event_id)

    def _deliver(self, delivery: Delivery, session: requests.Session) -> None:
        body = delivery.body
        for delay in (0.0, *self.retry_delays):
            if delay:
                time.sleep(delay)
            if delivery.generation != self._generation:
                delivery.error = "dropped: the emulator was reset"
                return
            timestamp = int(time.time())
            headers = {
                "content-type": "application/json",
                "webhook-id": delivery.event_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": sign(delivery.secret, delivery.event_id, timestamp, body),
            }
            delivery.attempts += 1
            try:
                response = session.post(
                    delivery.url, data=body.encode(), headers=headers, timeout=10
                )
                delivery.status = response.status_code
                if 200 <= response.status_code < 300:
                    delivery.delivered = True
                    return
                delivery.error = f"HTTP {response.status_code}"
            except requests.RequestException as exc:
                delivery.error = str(exc)

    def snapshot(self) -> list[dict[str, Any]]:
        """The recorded deliveries, oldest first (at most ``max_recorded``)."""
        with self._lock:
            return [
                {
                    "id": d.event_id,
                    "type": d.type,
                    "attempts": d.attempts,
                    "status": d.status,
                    "delivered": d.delivered,
                    "error": d.error,
                }
                for d in self.deliveries
            ]

    def reset(self) -> None:
        with self._lock:
            self._generation += 1
            self.deliveries.clear()
            self.forgotten = 0
        self.url = self.secret = ""
