"""The emulator's control API, for tests, demos and benchmarks (not part of Scalekit).

JSON over HTTPS on the emulator's own port, under ``/_emulator/``. Every endpoint is listed in
``ENDPOINTS`` with a one-line description; ``GET /_emulator/`` returns that list. When the
emulator is started with a control token, requests must send ``Authorization: Bearer <token>``.

``POST /_emulator/reset`` gives a fresh environment but keeps what the emulator was started
with: the redirect, post-logout and initiate-login URIs and the webhook endpoint and secret
passed on the command line (``--redirect-uri``, ``--webhook-url``...) or to ``Emulator()`` are
registered again, so an app configured against a running emulator keeps logging in. What was
registered through this API is forgotten.
"""

from __future__ import annotations

import hmac
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import requests

from .authserver import with_query
from .webhooks import MAX_RECORDED

if TYPE_CHECKING:
    from .server import Emulator
    from .web import Handler

ENDPOINTS = {
    ("GET", ""): "this list",
    (
        "POST",
        "reset",
    ): "forget all state: directory (re-seeds admin/member roles), sessions, tokens, "
    "URIs registered here, faults, counters, emails, webhook deliveries and endpoint; keeps the "
    "signing key, and restores the start-up configuration (the redirect URIs and webhook "
    "endpoint and secret given on the command line or to Emulator())",
    ("GET", "state"): "counts of organizations, users, roles, sessions, tokens",
    ("POST", "redirect-uris"): '{"redirect_uris": [...], "post_logout_redirect_uris": [...], '
    '"initiate_login_uri": "..."} registers URIs (added to those already registered)',
    (
        "POST",
        "keys/rotate",
    ): '{"grace_seconds": 300}: a new signing key; the old one stays in /keys for the grace '
    "period (0 to 30 days)",
    ("POST", "token-lifetimes"): '{"access_token": 299, "id_token": 299, "refresh_token": ..., '
    '"code": 600, "management_token": 86399, "refresh_reuse_grace": 0} in whole seconds (at '
    "most 366 days; the reuse grace at most 3600); all applied, or none when one is refused",
    ("POST", "faults"): '{"rate_limit_rps": 50, "rate_limit_burst": 50, "latency_ms": 20, '
    '"unavailable_ratio": 0.1, "methods": ["CreateUserAndMembership"]} replaces the faults',
    ("DELETE", "faults"): "removes every fault",
    ("GET", "counters"): "calls served and rejected per gRPC method and HTTP path",
    ("POST", "counters/reset"): "zeroes the counters",
    ("GET", "emails"): "invitation emails that would have been sent",
    ("POST", "webhooks"): '{"url": "https://...", "secret": "whsec_..."} delivers events there',
    ("GET", "webhooks/deliveries"): f"the last {MAX_RECORDED:,} deliveries with their attempts "
    'and status, and "forgotten": how many older ones are no longer recorded',
    ("POST", "duplicates"): '{"organization_external_id": "ALREADY_EXISTS", "user_email": ..., '
    '"user_external_id": ...}: the gRPC status a duplicate gets (default INVALID_ARGUMENT)',
    (
        "POST",
        "idp-initiated-login",
    ): '{"organization_id": ..., "connection_id": ..., "login_hint": ..., '
    '"relay_state": ...} returns {"token": ..., "url": <initiate login URI with idp_initiated_login>}',
    (
        "POST",
        "sessions/end",
    ): '{"sid": "ses_..."} ends an emulated session (its refresh tokens stop working)',
}


def _refuse_constant(name: str) -> Any:
    """Python's json accepts NaN and Infinity; JSON (and every option here) does not."""
    raise ValueError(f"{name} is not a JSON number: every number must be finite")


class ControlAPI:
    def __init__(self, emulator: Emulator, token: str = "") -> None:
        self.emulator = emulator
        self.token = token

    def handle(self, handler: Handler, method: str, path: str, query: dict[str, str]) -> None:
        if self.token:
            sent = handler.headers.get("authorization", "").removeprefix("Bearer ")
            if not hmac.compare_digest(sent.encode(), self.token.encode()):
                handler._json(401, {"error": "control token required"})
                return
        if (method, path) not in ENDPOINTS:
            handler._json(404, {"error": f"no control endpoint {method} /_emulator/{path}"})
            return
        try:
            body = json.loads(handler._body() or b"{}", parse_constant=_refuse_constant)
            if not isinstance(body, dict):
                raise ValueError("the request body must be a JSON object")
            name = path.replace("/", "_").replace("-", "_") or "index"
            result = getattr(self, f"{method.lower()}_{name}")(body)
        except KeyError as exc:
            # The endpoints read required fields as body["name"].
            handler._json(400, {"error": f"the request body needs {exc.args[0]!r}"})
            return
        except (ValueError, TypeError) as exc:
            handler._json(400, {"error": str(exc)})
            return
        handler._json(200, result)

    def get_index(self, body: dict[str, Any]) -> dict[str, Any]:
        return {f"{m} /_emulator/{p}": doc for (m, p), doc in ENDPOINTS.items()}

    def post_reset(self, body: dict[str, Any]) -> dict[str, Any]:
        self.emulator.reset()
        return {"reset": True}

    def get_state(self, body: dict[str, Any]) -> dict[str, Any]:
        return {**self.emulator.directory.counts(), **self.emulator.auth.counts()}

    def post_redirect_uris(self, body: dict[str, Any]) -> dict[str, Any]:
        self.emulator.auth.register_uris(
            body.get("redirect_uris", []),
            body.get("post_logout_redirect_uris", []),
            body.get("initiate_login_uri"),
        )
        client = self.emulator.auth.client
        return {
            "redirect_uris": sorted(client.redirect_uris),
            "post_logout_redirect_uris": sorted(client.post_logout_redirect_uris),
            "initiate_login_uri": client.initiate_login_uri,
        }

    def post_keys_rotate(self, body: dict[str, Any]) -> dict[str, Any]:
        old, new = self.emulator.keys.rotate(body.get("grace_seconds", 300))
        return {
            "old_kid": old.kid,
            "new_kid": new.kid,
            "published": [k.kid for k in self.emulator.keys.published()],
        }

    def post_token_lifetimes(self, body: dict[str, Any]) -> dict[str, Any]:
        lifetimes = self.emulator.auth.lifetimes
        lifetimes.update(body)
        return vars(lifetimes)

    def post_faults(self, body: dict[str, Any]) -> dict[str, Any]:
        self.emulator.faults.configure(body)
        return self.emulator.faults.snapshot()["faults"]

    def delete_faults(self, body: dict[str, Any]) -> dict[str, Any]:
        self.emulator.faults.clear()
        return self.emulator.faults.snapshot()["faults"]

    def get_counters(self, body: dict[str, Any]) -> dict[str, Any]:
        snapshot = self.emulator.faults.snapshot()
        return {"calls": snapshot["calls"], "rejected": snapshot["rejected"]}

    def post_counters_reset(self, body: dict[str, Any]) -> dict[str, Any]:
        self.emulator.faults.reset_counters()
        return {"calls": {}, "rejected": {}}

    def get_emails(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"emails": list(self.emulator.directory.invitation_emails)}

    def post_webhooks(self, body: dict[str, Any]) -> dict[str, Any]:
        self.emulator.webhooks.configure(body["url"], body["secret"])
        return {"url": body["url"]}

    def get_webhooks_deliveries(self, body: dict[str, Any]) -> dict[str, Any]:
        webhooks = self.emulator.webhooks
        return {"deliveries": webhooks.snapshot(), "forgotten": webhooks.forgotten}

    def post_duplicates(self, body: dict[str, Any]) -> dict[str, Any]:
        statuses = self.emulator.directory.duplicate_status
        valid = [code.name for code in grpc.StatusCode if code is not grpc.StatusCode.OK]
        chosen = {}
        for key, name in body.items():
            if key not in statuses:
                raise ValueError(f"unknown duplicate kind {key!r}; one of {sorted(statuses)}")
            if name not in valid:
                raise ValueError(
                    f"{key}: {name!r} is not a gRPC status name; one of {', '.join(valid)}"
                )
            chosen[key] = grpc.StatusCode[name]
        statuses.update(chosen)
        return {key: code.name for key, code in statuses.items()}

    def post_idp_initiated_login(self, body: dict[str, Any]) -> dict[str, Any]:
        token = self.emulator.auth.idp_initiated_token(
            organization_id=body["organization_id"],
            connection_id=body.get("connection_id", ""),
            login_hint=body.get("login_hint", ""),
            relay_state=body.get("relay_state", ""),
        )
        uri = self.emulator.auth.client.initiate_login_uri
        return {
            "token": token,
            "url": with_query(uri, {"idp_initiated_login": token}) if uri else "",
        }

    def post_sessions_end(self, body: dict[str, Any]) -> dict[str, Any]:
        self.emulator.auth.end_session(body["sid"])
        return {"ended": body["sid"]}


class ControlClient:
    """A client of the control API over the emulator's real port (for tests, demos, benchmarks)."""

    def __init__(self, url: str, ca_path: str | Path, token: str = "") -> None:
        self.url = url.rstrip("/") + "/_emulator/"
        self.session = requests.Session()
        # Per request: REQUESTS_CA_BUNDLE would override Session.verify.
        self.verify = str(ca_path)
        if token:
            self.session.headers["authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.session.request(
            method, self.url + path, json=body or {}, timeout=10, verify=self.verify
        )
        if response.status_code != 200:
            raise RuntimeError(
                f"emulator control {method} {path}: {response.status_code} {response.text}"
            )
        return response.json()

    def reset(self) -> None:
        self.call("POST", "reset")

    def state(self) -> dict[str, Any]:
        return self.call("GET", "state")

    def register_uris(
        self,
        redirect_uris: list[str] = (),
        post_logout_redirect_uris: list[str] = (),
        initiate_login_uri: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "redirect_uris": list(redirect_uris),
            "post_logout_redirect_uris": list(post_logout_redirect_uris),
        }
        if initiate_login_uri is not None:
            body["initiate_login_uri"] = initiate_login_uri
        return self.call("POST", "redirect-uris", body)

    def rotate_keys(self, grace_seconds: float = 300) -> dict[str, Any]:
        return self.call("POST", "keys/rotate", {"grace_seconds": grace_seconds})

    def set_token_lifetimes(self, **lifetimes: int) -> dict[str, Any]:
        return self.call("POST", "token-lifetimes", lifetimes)

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        return self.call("POST", "faults", faults)

    def clear_faults(self) -> dict[str, Any]:
        return self.call("DELETE", "faults")

    def counters(self) -> dict[str, Any]:
        return self.call("GET", "counters")

    def reset_counters(self) -> None:
        self.call("POST", "counters/reset")

    def emails(self) -> list[dict[str, Any]]:
        return self.call("GET", "emails")["emails"]

    def configure_webhooks(self, url: str, secret: str) -> None:
        self.call("POST", "webhooks", {"url": url, "secret": secret})

    def deliveries(self) -> list[dict[str, Any]]:
        return self.call("GET", "webhooks/deliveries")["deliveries"]

    def set_duplicate_status(self, **statuses: str) -> dict[str, Any]:
        return self.call("POST", "duplicates", statuses)

    def idp_initiated_login(self, **claims: str) -> dict[str, Any]:
        return self.call("POST", "idp-initiated-login", claims)

    def end_session(self, sid: str) -> None:
        self.call("POST", "sessions/end", {"sid": sid})
