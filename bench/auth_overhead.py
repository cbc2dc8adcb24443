"""What authentication costs per request: Django's own sessions, ``scalekit_auth``'s sessions,
DRF bearer tokens, and the SDK's ``scalekit.frameworks.django`` middleware, side by side.

    .venv/bin/python bench/auth_overhead.py [--seconds 8] [--rounds 4] [--profile ROW]

One process, one ``django.test.Client`` class for every variant, the project's production
settings (DEBUG off, secure cookies, ``cached_db`` sessions on the locmem cache, a SQLite file
database, PBKDF2 hashers), and an emulator in a child process (so its threads do not share this
process's GIL) with Scalekit's default token lifetimes. Every Scalekit session comes from a real
login through the emulator's hosted page; the SDK's cookie is made by the SDK's own login views.

    (a) django     Django's SessionMiddleware + AuthenticationMiddleware, ``login_required``,
                   a view reading ``request.user``; the user logged in with a password.
    (b) ours       the project's MIDDLEWARE (with ``ScalekitSessionMiddleware``), logged in
                   through ``scalekit_auth``'s views: the same user view, and an identity view
                   reading only ``request.scalekit``.
    (c) bearer     a DRF view with ``ScalekitBearerAuthentication`` and ``IsAuthenticated``,
                   ``Authorization: Bearer <access token of the login in (b)>``.
    (d) sdk        the project's middleware without ours, plus the SDK's
                   ``ScalekitAuthMiddleware``; an identity view under the SDK's
                   ``login_required`` reading ``request.scalekit_user``.

The rows run interleaved, a batch of each in turn, so that whatever else the machine runs
falls on every row alike, and rates are requests per CPU-second of the serving thread (client
and server run in it, one request at a time): what one free core would serve. The wall-clock
rate is shown too. Emulator calls are read from its control counters around the whole run;
database queries are counted during it, and the identity view of (b) is also checked with
``CaptureQueriesContext``. The access token lives 299 s (Scalekit's default) and is refreshed
30 s before expiry, so a run longer than about four minutes includes one refresh per session,
which the emulator calls then show. ``--profile ROW`` prints a cProfile of that row afterwards.

Exit code 0 when every target is met, 1 otherwise. The last line is machine-readable.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
import timeit
import types
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EMAIL = "ada@acme.example"
LEGACY_USER = ("legacy", "correct horse battery staple")
OUR_MIDDLEWARE = "scalekit_auth.middleware.ScalekitSessionMiddleware"
SDK_MIDDLEWARE = "scalekit.frameworks.django.ScalekitAuthMiddleware"
BATCH = 20

TARGETS = {
    "session_ratio": 0.9,  # (b) / (a) on the user view, at least
    "claims_vs_sdk_ratio": 1.0,  # (b) / (d) on the identity view, at least
    "bearer_verify_us": 20.0,  # at most
    "emulator_calls_per_request": 0.0,  # at most
}


# -- the emulator, in a child process -----------------------------------------------------------


def start_emulator(state_dir: str) -> tuple[subprocess.Popen, dict[str, str]]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings"}
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "scalekit_emulator", "--port", "0"]
        + ["--state-dir", state_dir],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    line = process.stdout.readline()
    if not line.startswith("SCALEKIT_ENVIRONMENT_URL="):
        process.kill()
        raise SystemExit(f"emulator did not start: {line!r}")
    return process, dict(part.split("=", 1) for part in line.split())


def configure_environment(workdir: str, emulator: dict[str, str]) -> None:
    """Production-like settings through the environment, before Django reads them. Every value
    a developer's .env might hold is set here, so the run does not depend on the machine."""
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_DEBUG": "false",
            "DJANGO_SECURE_COOKIES": "true",
            "DJANGO_ALLOWED_HOSTS": "testserver",
            "DJANGO_LOG_LEVEL": "WARNING",
            "SCALEKIT_EMULATOR_APP": "false",
            "DATABASE_URL": f"sqlite:///{workdir}/bench.sqlite3",
            "CACHE_URL": "locmemcache://",
            "SCALEKIT_REDIRECT_URI": "http://testserver/auth/callback/",
            "SCALEKIT_POST_LOGOUT_REDIRECT_URI": "http://testserver/",
            "SCALEKIT_STAFF_ROLES": "admin",
            "REQUESTS_CA_BUNDLE": emulator["SCALEKIT_CA_BUNDLE"],
            "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": emulator["SCALEKIT_CA_BUNDLE"],
            "NO_PROXY": "localhost,127.0.0.1",
            **{k: v for k, v in emulator.items() if k.startswith("SCALEKIT_")},
        }
    )


# -- the views under test -----------------------------------------------------------------------


def build_urlconf() -> str:
    """The benchmark's URLconf, as a module registered in ``sys.modules``."""
    from django.contrib.auth.decorators import login_required
    from django.contrib.auth.views import redirect_to_login
    from django.http import HttpRequest, HttpResponse, JsonResponse
    from django.urls import include, path
    from rest_framework.permissions import IsAuthenticated
    from rest_framework.response import Response
    from rest_framework.views import APIView
    from scalekit.frameworks import django as sdk_django

    from scalekit_auth.drf import ScalekitBearerAuthentication

    @login_required
    def user_view(request: HttpRequest) -> HttpResponse:
        user = request.user
        return JsonResponse({"id": user.pk, "username": user.get_username()})

    def identity_view(request: HttpRequest) -> HttpResponse:
        context = request.scalekit
        if not context.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return JsonResponse(
            {
                "user_id": context.user_id,
                "organization_id": context.organization_id,
                "roles": sorted(context.roles),
            }
        )

    @sdk_django.login_required
    def sdk_identity_view(request: HttpRequest) -> HttpResponse:
        claims = request.scalekit_user
        return JsonResponse(
            {
                "user_id": claims["sub"],
                "organization_id": claims.get("oid", ""),
                "roles": sorted(claims.get("roles") or ()),
            }
        )

    class BearerUser(APIView):
        authentication_classes = [ScalekitBearerAuthentication]
        permission_classes = [IsAuthenticated]

        def get(self, request):
            return Response({"id": request.user.pk, "user_id": request.auth.user_id})

    module = types.ModuleType("bench_auth_overhead_urls")
    module.urlpatterns = [
        path("user/", user_view),
        path("identity/", identity_view),
        path("api/user/", BearerUser.as_view()),
        path("sdk/identity/", sdk_identity_view),
        path("auth/", include("scalekit_auth.urls")),
        path("sdk/", include(sdk_django.urlpatterns)),
    ]
    sys.modules[module.__name__] = module
    return module.__name__


# -- logins ---------------------------------------------------------------------------------------


def client_with(middleware: list[str]):
    """A test client whose handler is built now, with ``middleware``, and kept."""
    from django.test import Client, override_settings

    client = Client()
    with override_settings(MIDDLEWARE=middleware):
        client.get("/user/")  # the handler loads its middleware on the first request
    return client


def follow_hosted_login(client, location: str, ca_path: str, expected_prefix: str):
    from scalekit_auth.emulator.testing import hosted_login

    callback = hosted_login(location, EMAIL, ca_path=ca_path)
    if not callback.startswith(expected_prefix):
        raise SystemExit(f"login did not come back to {expected_prefix}: {callback}")
    parts = urlsplit(callback)
    return client.get(f"{parts.path}?{parts.query}")


def login_ours(client, ca_path: str) -> None:
    start = client.get("/auth/login/", {"next": "/identity/"})
    done = follow_hosted_login(
        client, start["Location"], ca_path, "http://testserver/auth/callback/"
    )
    if done.status_code != 302 or done["Location"] != "/identity/":
        raise SystemExit(f"scalekit_auth login failed: {done.status_code} {done.content[:300]!r}")


def login_sdk(client, ca_path: str) -> None:
    start = client.get("/sdk/login", {"returnTo": "/sdk/identity/"})
    done = follow_hosted_login(client, start["Location"], ca_path, "http://testserver/sdk/callback")
    if done.status_code != 302 or "sk_session" not in client.cookies:
        raise SystemExit(f"SDK login failed: {done.status_code} {done.get('Location')}")


# -- measuring ------------------------------------------------------------------------------------


@dataclass
class Row:
    key: str
    label: str
    client: object
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    cpu: float = 0.0
    wall: float = 0.0
    queries: int = 0
    rounds: list[tuple[int, float]] = field(default_factory=list)  # (requests, cpu) per round

    @property
    def rate(self) -> float:
        """Requests per CPU-second of the serving thread, over the whole run."""
        return self.requests / self.cpu

    @property
    def wall_rate(self) -> float:
        return self.requests / self.wall

    def round_rate(self, index: int) -> float:
        requests, cpu = self.rounds[index]
        return requests / cpu

    def request(self):
        return self.client.get(self.path, headers=self.headers)


def measure(rows: list[Row], seconds: float, rounds: int) -> None:
    """Run every row for about ``seconds`` in total, interleaved batch by batch (so that whatever
    else the machine does falls on every row alike), in ``rounds`` rounds."""
    from django.db import connection

    current: list[Row] = []

    def count(execute, sql, params, many, context):
        current[0].queries += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        for _ in range(rounds):
            before = {row.key: (row.requests, row.cpu) for row in rows}
            deadline = time.perf_counter() + seconds * len(rows) / rounds
            while time.perf_counter() < deadline:
                for row in rows:
                    current[:] = [row]
                    get, path, headers = row.client.get, row.path, row.headers
                    started, cpu_started = time.perf_counter(), time.thread_time()
                    for _ in range(BATCH):
                        response = get(path, headers=headers)
                        if response.status_code != 200:
                            raise SystemExit(f"{row.label}: {response.status_code} on {path}")
                    row.cpu += time.thread_time() - cpu_started
                    row.wall += time.perf_counter() - started
                    row.requests += BATCH
            for row in rows:
                requests, cpu = before[row.key]
                row.rounds.append((row.requests - requests, row.cpu - cpu))


def queries_of(row: Row, n: int = 50) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        for _ in range(n):
            row.request()
    return len(captured)


def profile(row: Row, n: int = 2000) -> None:
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(n):
        row.request()
    profiler.disable()
    print(f"\n-- cProfile of {n} requests: {row.label}")
    stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs()
    stats.sort_stats("tottime").print_stats(25)


def bearer_verify_us(token: str) -> tuple[float, float]:
    """(warm, cold) microseconds of ``tokens.verify_bearer``: cached claims vs a full verify."""
    from scalekit_auth import tokens

    tokens.verify_bearer(token)
    number = 100_000
    warm = min(timeit.repeat(lambda: tokens.verify_bearer(token), number=number, repeat=5))
    cold = min(timeit.repeat(lambda: tokens.verify(token), number=200, repeat=5))
    return warm / number * 1e6, cold / 200 * 1e6


# -- the run --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=8.0, help="measuring time per row, all rounds together"
    )
    parser.add_argument(
        "--rounds", type=int, default=4, help="rounds, to show the spread of the ratios"
    )
    parser.add_argument(
        "--profile",
        metavar="ROW",
        action="append",
        default=[],
        choices=["a_user", "b_user", "b_identity", "c_bearer", "d_identity"],
        help="after the run, print a cProfile of 2000 requests of this row (repeatable)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="auth-overhead-") as workdir:
        process, emulator = start_emulator(f"{workdir}/emulator")
        try:
            return run(args, workdir, emulator)
        finally:
            process.terminate()
            process.wait(timeout=10)


def run(args: argparse.Namespace, workdir: str, emulator: dict[str, str]) -> int:
    configure_environment(workdir, emulator)
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from scalekit import ScalekitClient
    from scalekit.v1.commons import commons_pb2
    from scalekit.v1.organizations import organizations_pb2
    from scalekit.v1.users import users_pb2

    from scalekit_auth.emulator.control import ControlClient

    ca_path = emulator["SCALEKIT_CA_BUNDLE"]
    url = emulator["SCALEKIT_ENVIRONMENT_URL"]
    call_command("migrate", verbosity=0)
    settings.ROOT_URLCONF = build_urlconf()
    # The SDK's Django integration reads its own settings (see scalekit/frameworks/django.py).
    settings.SCALEKIT_ENV_URL = url
    settings.SCALEKIT_CLIENT_ID = emulator["SCALEKIT_CLIENT_ID"]
    settings.SCALEKIT_CLIENT_SECRET = emulator["SCALEKIT_CLIENT_SECRET"]
    settings.SCALEKIT_REDIRECT_URI = "http://testserver/sdk/callback"
    settings.SCALEKIT_COOKIE_ENCRYPTION_SECRET = secrets.token_urlsafe(32)
    settings.SCALEKIT_LOGIN_PATH = "/sdk/login"

    control = ControlClient(url, ca_path)
    control.register_uris(
        ["http://testserver/auth/callback/", "http://testserver/sdk/callback"],
        ["http://testserver/"],
    )
    sdk = ScalekitClient(url, emulator["SCALEKIT_CLIENT_ID"], emulator["SCALEKIT_CLIENT_SECRET"])
    org = sdk.organization.create_organization(
        organizations_pb2.CreateOrganization(display_name="Acme", external_id="acme")
    )[0].organization
    sdk.users.create_user_and_membership(
        org.id,
        users_pb2.CreateUser(
            email=EMAIL,
            user_profile=users_pb2.CreateUserProfile(given_name="Ada", family_name="Lovelace"),
            membership=users_pb2.CreateMembership(roles=[commons_pb2.Role(name="admin")]),
        ),
        send_invitation_email=False,
    )
    get_user_model().objects.create_user(username=LEGACY_USER[0], password=LEGACY_USER[1])

    project = list(settings.MIDDLEWARE)
    assert OUR_MIDDLEWARE in project, "the project's MIDDLEWARE no longer has ours"
    without_ours = [m for m in project if m != OUR_MIDDLEWARE]
    auth_index = without_ours.index("django.contrib.auth.middleware.AuthenticationMiddleware")
    with_sdk = [*without_ours[: auth_index + 1], SDK_MIDDLEWARE, *without_ours[auth_index + 1 :]]

    django_client = client_with(without_ours)
    if not django_client.login(username=LEGACY_USER[0], password=LEGACY_USER[1]):
        raise SystemExit("Django password login failed")
    ours = client_with(project)
    login_ours(ours, ca_path)
    token = ours.session["_scalekit"]["access_token"]
    api = client_with(project)
    sdk_client = client_with(with_sdk)
    login_sdk(sdk_client, ca_path)

    rows = [
        Row("a_user", "(a) Django session, login_required, request.user", django_client, "/user/"),
        Row("b_user", "(b) scalekit_auth session, request.user", ours, "/user/"),
        Row("b_identity", "(b) scalekit_auth session, request.scalekit only", ours, "/identity/"),
        Row(
            "c_bearer",
            "(c) DRF ScalekitBearerAuthentication",
            api,
            "/api/user/",
            {"authorization": f"Bearer {token}"},
        ),
        Row(
            "d_identity",
            "(d) SDK ScalekitAuthMiddleware, scalekit_user",
            sdk_client,
            "/sdk/identity/",
        ),
    ]
    for row in rows:  # warm up: caches, JWKS, claims cache, the SDK's key derivation
        for _ in range(200):
            response = row.request()
        if response.status_code != 200:
            raise SystemExit(f"{row.label}: {response.status_code} {response.content[:300]!r}")
    identity_queries = queries_of(rows[2])

    control.reset_counters()
    measure(rows, args.seconds, args.rounds)
    total_calls = sum(control.counters()["calls"].values())
    warm_us, cold_us = bearer_verify_us(token)

    by_key = {row.key: row for row in rows}
    total_requests = sum(row.requests for row in rows)
    result = {
        "session_ratio": by_key["b_user"].rate / by_key["a_user"].rate,
        "claims_vs_sdk_ratio": by_key["b_identity"].rate / by_key["d_identity"].rate,
        "bearer_verify_us": warm_us,
        "emulator_calls_per_request": total_calls / total_requests,
    }

    for key in args.profile:  # before the table, so that RESULT stays the last line
        profile(by_key[key])

    def spread(top: str, bottom: str) -> str:
        ratios = [
            by_key[top].round_rate(i) / by_key[bottom].round_rate(i) for i in range(args.rounds)
        ]
        return f"{min(ratios):.2f}-{max(ratios):.2f}"

    base = by_key["a_user"].rate
    print(
        f"{'variant':<50} | {'req/s cpu':>9} | {'vs (a)':>6} | {'us/req':>6} | "
        f"{'req/s wall':>10} | {'requests':>8} | {'SQL queries':>11}"
    )
    print(f"{'-' * 50}-+-{'-' * 9}-+-{'-' * 6}-+-{'-' * 6}-+-{'-' * 10}-+-{'-' * 8}-+-{'-' * 11}")
    for row in rows:
        print(
            f"{row.label:<50} | {row.rate:>9.0f} | {row.rate / base:>5.2f}x | "
            f"{1e6 / row.rate:>6.0f} | {row.wall_rate:>10.0f} | "
            f"{row.requests:>8} | {row.queries:>11}"
        )
    print()
    print(
        f"{args.seconds:.0f} s per row in {args.rounds} rounds, rows interleaved every "
        f"{BATCH} requests. req/s cpu: requests per CPU-second of the serving thread (the "
        "ratios use it); req/s wall: by the clock, which also counts waiting for a core."
    )
    print(
        f"per-round spread: (b)/(a) user {spread('b_user', 'a_user')}, "
        f"(b)/(d) identity {spread('b_identity', 'd_identity')}"
    )
    print(
        f"emulator calls during the run: {total_calls} for {total_requests} requests. "
        "SQL queries of (b) beyond one per user-view request: the rollout row, re-read once "
        "per ROLLOUT_CACHE_SECONDS by whichever request comes first."
    )
    print(f"bearer token verification: {warm_us:.2f} us warm (claims cache), {cold_us:.0f} us cold")
    print(f"(b) identity view: {identity_queries} queries in 50 requests (CaptureQueriesContext)")

    checks = [
        ("(b)/(a) on request.user", result["session_ratio"], ">=", TARGETS["session_ratio"]),
        (
            "(b)/(d) on identity only",
            result["claims_vs_sdk_ratio"],
            ">=",
            TARGETS["claims_vs_sdk_ratio"],
        ),
        ("bearer verify us, warm", warm_us, "<=", TARGETS["bearer_verify_us"]),
        (
            "emulator calls per request",
            result["emulator_calls_per_request"],
            "<=",
            TARGETS["emulator_calls_per_request"],
        ),
        ("(b) identity view queries", identity_queries, "<=", 0),
    ]
    failed = 0
    for name, value, op, target in checks:
        ok = value >= target if op == ">=" else value <= target
        failed += not ok
        print(f"target {name:<28} {value:>9.3f} {op} {target:<5} {'ok' if ok else 'MISSED'}")
    print(
        "RESULT "
        + " ".join(
            f"{key}={value:.2f}" if key != "emulator_calls_per_request" else f"{key}={value:.4f}"
            for key, value in result.items()
        )
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
