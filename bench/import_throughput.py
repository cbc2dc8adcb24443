"""Import throughput against a rate-limited Scalekit: naive loop vs. in-process vs. Celery.

Generates USERS users over ORGANIZATIONS organizations (one membership each, role ``member``)
and imports them into the emulator, which is limited to RATE requests per second (bucket of one
second) with LATENCY ms added to every call. Side by side, in one run:

* ``sequential``: the loop of Scalekit's migration guide, one SDK call after the other (measured
  on the first SEQUENTIAL users only: at ~20 ms a call it cannot approach the limit anyway);
* ``in-process``: ``manage.py migration_import`` with threads on SQLite, at USERS/10 and at
  USERS users, to show the peak memory of the import process does not grow with the input;
* ``celery``: ``migration_import --async --wait`` on 2 Celery worker processes (threads pool)
  with Redis and PostgreSQL (statements per record counted with pg_stat_statements).

Throughput is users per second in the steady state of the user phase (the users written between
the 10th and 90th percentile of the ledger's write times; the notes also give the overall rate
from first claim to last write); each user is one CreateUserAndMembership call, so it compares
directly with RATE. After each
run the rate limit is lifted and every user is read back through the SDK to count lost and
duplicated users (same email or external id, or two memberships in one organization), and the
ledger is checked for two records on one Scalekit user or one key created twice. Peak memory is the import process's maximum RSS (``wait4``).

    .venv/bin/python bench/import_throughput.py [--users 100000] [--rate 200]

The last line is a machine-readable summary.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.test_settings")


def start_emulator(state_dir: str) -> tuple[subprocess.Popen, dict[str, str]]:
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "scalekit_emulator",
            "--port",
            "0",
            "--state-dir",
            state_dir,
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings"},
    )
    line = process.stdout.readline()
    if not line.startswith("SCALEKIT_ENVIRONMENT_URL="):
        process.kill()
        raise SystemExit(f"emulator did not start: {line!r}")
    return process, dict(part.split("=", 1) for part in line.split())


def run_measured(args: list[str], env: dict[str, str]) -> tuple[int, str, str, float, float]:
    """Run ``manage.py args``; returns (exit code, stdout, stderr, seconds, peak RSS in MB)."""
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), *args],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=err,
        )
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        return process.returncode, out.read(), err.read(), elapsed, usage.ru_maxrss / 1024


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def read_back(client, expected: int) -> tuple[int, int]:
    """(lost, duplicated) among the generated users, read through the SDK.

    Duplicated counts users with the same email or external id (which Scalekit, and the
    emulator, refuse, so this stays 0 unless that changes) and a second membership of one user in
    the same organization; ``ledger_duplicates`` adds what the import's own ledger says.
    """
    emails: Counter[str] = Counter()
    external_ids: Counter[str] = Counter()
    repeated_memberships = 0
    token = None
    while True:
        response = client.users.list_users(page_size=100, page_token=token)[0]
        for user in response.users:
            emails[user.email.lower()] += 1
            external_ids[user.external_id] += 1
            organizations = [m.organization_id for m in user.memberships]
            repeated_memberships += len(organizations) - len(set(organizations))
        token = response.next_page_token
        if not token:
            break
    duplicated = (
        sum(n - 1 for n in emails.values() if n > 1)
        + sum(n - 1 for n in external_ids.values() if n > 1)
        + repeated_memberships
    )
    return max(expected - len(emails), 0), duplicated


SQL_LEDGER_DUPLICATES = (
    # Two user records mapped to one Scalekit user, or one key created twice.
    "SELECT (SELECT count(*) - count(DISTINCT scalekit_id) FROM migration_importrecord "
    "WHERE kind = 'user' AND status = 'succeeded') + (SELECT count(*) - count(DISTINCT key) "
    "FROM migration_importrecord WHERE kind = 'user' AND outcome = 'created' "
    "AND status <> 'rolled_back')"
)


def ledger_duplicates(connection) -> int:
    """Duplicates the ledger records (sqlite3 or psycopg connection)."""
    return int(connection.execute(SQL_LEDGER_DUPLICATES).fetchone()[0] or 0)


def as_datetime(value: object) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def user_phase_rates(first_claims: list, writes: list) -> tuple[float, float]:
    """(overall, sustained) users per second of the user phase.

    Overall: every user between the first claim and the last write. Sustained: the users written
    between the 10th and the 90th percentile of the write times, over that time (the steady state,
    without the ramp-up of the first batches and the tail of the last ones).
    """
    if not writes:
        return 0.0, 0.0
    times = sorted(as_datetime(t) for t in writes)
    start = min(as_datetime(t) for t in first_claims)
    overall = len(times) / max((times[-1] - start).total_seconds(), 1e-9)
    if len(set(times)) < 20:  # too few batches to tell a steady state from the ramp
        return overall, overall
    low, high = int(0.1 * len(times)), int(0.9 * len(times)) - 1
    span = (times[high] - times[low]).total_seconds()
    sustained = (high - low) / span if span > 0 else overall
    return overall, sustained


SQL_USER_TIMES = (
    "SELECT first_claimed_at, updated_at FROM migration_importrecord "
    "WHERE kind = 'user' AND status = 'succeeded'"
)


def rates_from(rows: list) -> tuple[float, float]:
    return user_phase_rates([r[0] for r in rows], [r[1] for r in rows])


def main() -> None:  # noqa: C901 - a linear script
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--organizations", type=int, default=None, help="default: users / 100")
    parser.add_argument(
        "--rate", type=float, default=200.0, help="the emulator's limit, requests/s"
    )
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--sequential", type=int, default=2000, help="users for the naive loop")
    parser.add_argument("--concurrency", type=int, default=16, help="in-process threads")
    parser.add_argument("--worker-threads", type=int, default=8, help="threads per Celery worker")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--skip-celery", action="store_true")
    args = parser.parse_args()
    organizations = args.organizations or max(1, args.users // 100)
    small = max(1, args.users // 10)
    rate = args.rate

    from scalekit import ScalekitClient
    from scalekit.v1.organizations import organizations_pb2
    from scalekit.v1.users import users_pb2

    from migration.testing import (
        celery_worker,
        postgres_server,
        project_env,
        redis_server,
        write_organizations_csv,
        write_users_csv,
    )
    from scalekit_auth.emulator.control import ControlClient

    rows: list[tuple[str, int, float, float, int, int, str]] = []
    lost_total = duplicated_total = 0
    with ExitStack() as stack:
        work = tempfile.mkdtemp(prefix="bench-import-")
        stack.callback(shutil.rmtree, work, ignore_errors=True)
        emulator, info = start_emulator(os.path.join(work, "emulator"))
        stack.callback(emulator.kill)
        url, ca = info["SCALEKIT_ENVIRONMENT_URL"], info["SCALEKIT_CA_BUNDLE"]
        os.environ["REQUESTS_CA_BUNDLE"] = os.environ["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] = ca
        os.environ.setdefault("NO_PROXY", "localhost,127.0.0.1")
        control = ControlClient(url, ca)
        env = project_env(
            SCALEKIT_ENVIRONMENT_URL=url,
            SCALEKIT_CLIENT_ID=info["SCALEKIT_CLIENT_ID"],
            SCALEKIT_CLIENT_SECRET=info["SCALEKIT_CLIENT_SECRET"],
            SCALEKIT_CA_BUNDLE=ca,
        )
        client = ScalekitClient(url, info["SCALEKIT_CLIENT_ID"], info["SCALEKIT_CLIENT_SECRET"])

        def fresh(limit: bool = True) -> None:
            control.reset()
            if limit:
                control.set_faults(
                    rate_limit_rps=rate, rate_limit_burst=rate, latency_ms=args.latency_ms
                )

        orgs_csv = write_organizations_csv(Path(work) / "orgs.csv", organizations)
        print(
            f"generating {args.users} users over {organizations} organizations ...", file=sys.stderr
        )
        users_csv = write_users_csv(Path(work) / "users.csv", args.users, organizations)
        small_csv = write_users_csv(Path(work) / "users-small.csv", small, organizations)

        # 1. the naive loop of the guide -------------------------------------------------
        fresh()
        count = min(args.sequential, args.users)
        org_ids = {}
        for index in range(min(organizations, count)):
            org = client.organization.create_organization(
                organizations_pb2.CreateOrganization(
                    display_name=f"Organization {index}", external_id=f"org-{index:05d}"
                )
            )[0].organization
            org_ids[index] = org.id
        print(f"sequential loop: {count} users ...", file=sys.stderr)
        started = time.monotonic()
        for index in range(count):
            client.users.create_user_and_membership(
                org_ids[index % len(org_ids)],
                users_pb2.CreateUser(
                    email=f"user{index:07d}@example.com", external_id=f"legacy-{index}"
                ),
                send_invitation_email=False,
            )
        sequential = count / (time.monotonic() - started)
        rows.append(
            ("sequential (guide's loop)", count, sequential, 0.0, 0, 0, "one call at a time")
        )

        # 2. in-process, small and full (the small run shows memory does not grow with input)
        template = os.path.join(work, "template.sqlite3")
        migrated = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput"],
            env={**env, "DATABASE_URL": f"sqlite:///{template}"},
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if migrated.returncode:
            raise SystemExit(migrated.stderr)
        inprocess_rate = 0.0
        peak_mb = 0.0
        for expected, path in ((small, small_csv), (args.users, users_csv)):
            if expected == small and small == args.users:
                continue
            fresh()
            database = os.path.join(work, f"inprocess-{expected}.sqlite3")
            shutil.copy(template, database)
            print(f"in-process import: {expected} users ...", file=sys.stderr)
            code, out, err, elapsed, peak = run_measured(
                [
                    "migration_import",
                    "--organizations",
                    str(orgs_csv),
                    "--users",
                    str(path),
                    "--rate",
                    str(rate),
                    "--concurrency",
                    str(args.concurrency),
                    "--batch-size",
                    str(args.batch_size),
                    "--json",
                    "--no-progress",
                ],
                {**env, "DATABASE_URL": f"sqlite:///{database}"},
            )
            if code:
                raise SystemExit(f"in-process import failed ({code}): {err[-3000:]}")
            with sqlite3.connect(database) as db:
                overall, per_s = rates_from(db.execute(SQL_USER_TIMES).fetchall())
                in_ledger = ledger_duplicates(db)
            control.set_faults()
            lost, duplicated = read_back(client, expected)
            duplicated += in_ledger
            lost_total += lost
            duplicated_total += duplicated
            rows.append(
                (
                    "in-process",
                    expected,
                    per_s,
                    peak,
                    lost,
                    duplicated,
                    f"{elapsed:.0f}s wall, overall {overall:.1f}/s, SQLite, {args.concurrency} threads",
                )
            )
            peak_mb = max(peak_mb, peak)
            inprocess_rate = per_s

        # 3. Celery -----------------------------------------------------------------------
        celery_rate = 0.0
        if not args.skip_celery:
            redis_url = stack.enter_context(redis_server())
            postgres = stack.enter_context(
                postgres_server("shared_preload_libraries=pg_stat_statements")
            )
            database_url = postgres.create_database("bench")
            with postgres.connect("bench") as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            celery_env = {**env, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
            migrated = subprocess.run(
                [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput"],
                env=celery_env,
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            if migrated.returncode:
                raise SystemExit(migrated.stderr)
            fresh()
            with (
                celery_worker("b1", celery_env, concurrency=args.worker_threads, logdir=work) as w1,
                celery_worker("b2", celery_env, concurrency=args.worker_threads, logdir=work) as w2,
            ):
                with postgres.connect("bench") as conn:
                    conn.execute("SELECT pg_stat_statements_reset()")
                print(f"celery import: {args.users} users on 2 workers ...", file=sys.stderr)
                code, out, err, elapsed, peak = run_measured(
                    [
                        "migration_import",
                        "--organizations",
                        str(orgs_csv),
                        "--users",
                        str(users_csv),
                        "--rate",
                        str(rate),
                        "--batch-size",
                        str(args.batch_size),
                        "--async",
                        "--wait",
                        "--json",
                        "--no-progress",
                    ],
                    celery_env,
                )
                workers_peak = peak_rss_mb(w1.process.pid) + peak_rss_mb(w2.process.pid)
                if code:
                    raise SystemExit(
                        f"celery import failed ({code}): {out[-2000:]} {err[-3000:]} {w1.log()[-2000:]}"
                    )
            with postgres.connect("bench") as conn:
                overall, celery_rate = rates_from(conn.execute(SQL_USER_TIMES).fetchall())
                statements = conn.execute(
                    "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
                    "WHERE query ILIKE '%migration_importrecord%' AND query NOT ILIKE '%pg_stat_statements%'"
                ).fetchone()[0]
                records = conn.execute("SELECT count(*) FROM migration_importrecord").fetchone()[0]
                in_ledger = ledger_duplicates(conn)
            control.set_faults()
            lost, duplicated = read_back(client, args.users)
            duplicated += in_ledger
            lost_total += lost
            duplicated_total += duplicated
            rows.append(
                (
                    "celery, 2 workers",
                    args.users,
                    celery_rate,
                    peak,
                    lost,
                    duplicated,
                    f"{elapsed:.0f}s wall, overall {overall:.1f}/s, workers {workers_peak:.0f} MB, "
                    f"{statements / max(records, 1):.3f} ledger statements/record",
                )
            )
            summary = json.loads(out)
            assert summary["status"] == "completed", summary

    print()
    print(
        f"emulator limit {rate:.0f} req/s, {args.latency_ms:.0f} ms per call; {organizations} organizations"
    )
    header = f"{'variant':<26} {'users':>8} {'sust./s':>9} {'x limit':>8} {'peak MB':>8} {'lost':>5} {'dup':>5}  notes"
    print(header)
    print("-" * len(header))
    for name, users, per_s, peak, lost, duplicated, notes in rows:
        print(
            f"{name:<26} {users:>8} {per_s:>9.1f} {per_s / rate:>8.3f} {peak:>8.1f} {lost:>5} {duplicated:>5}  {notes}"
        )
    print(
        f"RESULT rate_limit={rate:.0f} inprocess_per_s={inprocess_rate:.1f} celery_per_s={celery_rate:.1f} "
        f"sequential_per_s={sequential:.1f} lost={lost_total} duplicated={duplicated_total} peak_mb={peak_mb:.1f}"
    )


if __name__ == "__main__":
    main()
