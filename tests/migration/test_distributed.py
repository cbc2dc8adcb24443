"""The distributed path: real Celery worker processes, a real Redis, a real PostgreSQL.

Everything runs as it would in production: ``manage.py`` commands and ``celery worker`` processes
of this project, configured only by environment variables, talking to the emulator (started by
this test session) through the real SDK. The test process reads the ledger with psycopg and
Scalekit's state with the SDK.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest

from migration.testing import (
    ServiceUnavailable,
    celery_worker,
    manage,
    postgres_server,
    project_env,
    redis_server,
    write_organizations_csv,
    write_users_csv,
)

pytestmark = [pytest.mark.celery, pytest.mark.postgres]


@pytest.fixture(scope="module")
def services(emulator):
    """Redis and PostgreSQL (migrated) for the module; yields the base environment."""
    try:
        with redis_server() as redis_url, postgres_server() as postgres:
            database_url = postgres.create_database("migration_distributed")
            env = project_env(
                DATABASE_URL=database_url,
                REDIS_URL=redis_url,
                SCALEKIT_ENVIRONMENT_URL=emulator.url,
                SCALEKIT_CLIENT_ID=emulator.client_id,
                SCALEKIT_CLIENT_SECRET=emulator.client_secret,
                SCALEKIT_CA_BUNDLE=str(emulator.ca_path),
            )
            migrated = manage("migrate", "--noinput", env=env)
            assert migrated.returncode == 0, migrated.stderr
            yield {"env": env, "postgres": postgres, "redis_url": redis_url}
    except ServiceUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def cluster(services, fresh_emulator, tmp_path):
    """A clean ledger, an empty Redis and a fresh emulator for each test."""
    import redis

    with services["postgres"].connect("migration_distributed") as conn:
        conn.execute(
            "TRUNCATE migration_verificationdifference, migration_importrecord, migration_importrun CASCADE"
        )
    redis.Redis.from_url(services["redis_url"]).flushall()
    return {**services, "emulator": fresh_emulator, "logs": str(tmp_path)}


def ledger(cluster, sql: str, *params):
    with cluster["postgres"].connect("migration_distributed") as conn:
        return conn.execute(sql, params).fetchall()


def user_counts(cluster, run: int) -> dict[str, int]:
    rows = ledger(
        cluster,
        "SELECT status, count(*) FROM migration_importrecord WHERE run_id = %s AND kind = 'user' GROUP BY status",
        run,
    )
    return dict(rows)


def wait_until(predicate, timeout: float, message: str, poll: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout}s: {message}")


def wait_quiet(cluster, run: int, seconds: float = 2.5, timeout: float = 60) -> dict[str, int]:
    """Wait until the run's user counts stop changing (the live workers have nothing left)."""
    last, since = None, time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = user_counts(cluster, run)
        if counts != last:
            last, since = counts, time.monotonic()
        elif time.monotonic() - since >= seconds:
            return counts
        time.sleep(0.25)
    raise AssertionError(f"the run never settled: {last}")


def all_users(sdk) -> list:
    users, token = [], None
    while True:
        response = sdk.users.list_users(page_size=100, page_token=token)[0]
        users += list(response.users)
        token = response.next_page_token
        if not token:
            return users


def scalekit_emails(sdk) -> list[str]:
    return [user.email for user in all_users(sdk)]


def start_import(
    cluster, tmp_path: Path, users: int, organizations: int, *extra: str, env=None
) -> int:
    orgs = write_organizations_csv(tmp_path / "orgs.csv", organizations)
    people = write_users_csv(tmp_path / "users.csv", users, organizations)
    result = manage(
        "migration_import",
        "--organizations",
        str(orgs),
        "--users",
        str(people),
        "--async",
        "--json",
        "--no-progress",
        *extra,
        env=env or cluster["env"],
    )
    assert result.returncode == 3, result.stderr  # queued, not finished
    return json.loads(result.stdout)["run"]


def verify_clean(cluster, run: int, sdk, users: int) -> None:
    verified = manage("migration_verify", str(run), "--json", "--no-progress", env=cluster["env"])
    assert verified.returncode == 0, verified.stdout[-3000:] + verified.stderr[-3000:]
    report = json.loads(verified.stdout)
    assert report["differences"] == [] and report["checked"] >= users
    emails = scalekit_emails(sdk)
    assert len(emails) == users and len(set(emails)) == users  # every valid user, exactly once
    # Scalekit refuses a second user with one email, so also: no user twice in an organization,
    # and no two ledger records on one Scalekit user or one key created twice.
    repeated = [
        user.email
        for user in all_users(sdk)
        if len({m.organization_id for m in user.memberships}) != len(user.memberships)
    ]
    assert repeated == []
    (duplicates,) = ledger(
        cluster,
        "SELECT (SELECT count(*) - count(DISTINCT scalekit_id) FROM migration_importrecord "
        "WHERE run_id = %s AND kind = 'user' AND status = 'succeeded') + (SELECT count(*) - "
        "count(DISTINCT key) FROM migration_importrecord WHERE kind = 'user' "
        "AND outcome = 'created' AND status <> 'rolled_back')",
        run,
    )
    assert duplicates == (0,)


def test_worker_killed_mid_run_then_resume_loses_and_duplicates_nothing(cluster, sdk, tmp_path):
    emulator = cluster["emulator"]
    emulator.control.set_faults(latency_ms=20)
    env = cluster["env"]
    with (
        celery_worker("w1", env, concurrency=4, logdir=cluster["logs"]) as w1,
        celery_worker("w2", env, concurrency=4, logdir=cluster["logs"]),
    ):
        run = start_import(cluster, tmp_path, 300, 6, "--batch-size", "20", "--rate", "60")
        wait_until(
            lambda: user_counts(cluster, run).get("succeeded", 0) >= 60, 60, "60 users imported"
        )
        w1.kill()  # SIGKILL: no chance to release its claims or ack its tasks
        stuck = wait_quiet(cluster, run)
        assert stuck.get("in_flight", 0) > 0, stuck  # w1 died holding records
        assert stuck.get("succeeded", 0) < 300

        resumed = manage(
            "migration_resume",
            str(run),
            "--takeover",
            "--async",
            "--wait",
            "--json",
            "--no-progress",
            env=env,
        )
        assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
        summary = json.loads(resumed.stdout)
        assert summary["status"] == "completed" and summary["taken_over"] == stuck["in_flight"]
        assert summary["kinds"]["user"]["created"] == 300
    verify_clean(cluster, run, sdk, 300)
    assert emulator.control.emails() == []


def test_prefork_child_killed_mid_batch_is_redelivered_and_finishes(cluster, sdk, tmp_path):
    emulator = cluster["emulator"]
    emulator.control.set_faults(latency_ms=20)
    env = cluster["env"]
    with celery_worker("p1", env, pool="prefork", concurrency=2, logdir=cluster["logs"]) as worker:
        run = start_import(cluster, tmp_path, 160, 4, "--batch-size", "40", "--rate", "40")
        # Kill every pool child while a batch is in flight, so the child running it is among
        # them (killing one child could pick an idle one). A batch can still finish between the
        # ledger read and the kill, so try again until the pool reports a lost job.
        for _attempt in range(5):
            wait_until(
                lambda: user_counts(cluster, run).get("in_flight", 0) > 0, 60, "a batch in flight"
            )
            pool = f"/proc/{worker.process.pid}/task/{worker.process.pid}/children"
            children = [int(pid) for pid in Path(pool).read_text().split()]
            assert children, "the prefork pool has no child process"
            for child in children:
                os.kill(child, signal.SIGKILL)  # the pool replaces it; the task is requeued
            try:
                wait_until(lambda: "WorkerLostError" in worker.log(), 10, "a lost job")
                break
            except AssertionError:
                continue
        assert "WorkerLostError" in worker.log(), worker.log()[-3000:]
        finished = manage(
            "migration_status",
            str(run),
            "--wait",
            "--timeout",
            "120",
            "--json",
            "--no-progress",
            env=env,
        )
        assert finished.returncode == 0, finished.stdout[-3000:] + worker.log()[-3000:]
    verify_clean(cluster, run, sdk, 160)


def test_unavailable_faults_and_rate_limit_bursts_on_celery(cluster, sdk, tmp_path):
    import redis

    emulator = cluster["emulator"]
    # The server allows 50 req/s in bursts of 5; the import is configured for 80 in bursts of 20.
    emulator.control.set_faults(
        rate_limit_rps=50, rate_limit_burst=5, unavailable_ratio=0.1, latency_ms=5
    )
    env = cluster["env"]
    with (
        celery_worker("f1", env, concurrency=4, logdir=cluster["logs"]),
        celery_worker("f2", env, concurrency=4, logdir=cluster["logs"]),
    ):
        run = start_import(
            cluster, tmp_path, 120, 4, "--batch-size", "15", "--rate", "80", "--burst", "20"
        )
        finished = manage(
            "migration_status",
            str(run),
            "--wait",
            "--timeout",
            "180",
            "--json",
            "--no-progress",
            env=env,
        )
        assert finished.returncode == 0, finished.stdout[-3000:]
    rejected = emulator.control.counters()["rejected"]
    assert sum(rejected.values()) > 5, rejected
    bucket = redis.Redis.from_url(cluster["redis_url"])
    (key,) = bucket.keys("migration:ratelimit:*")
    assert int(bucket.hget(key, "pauses")) > 0  # 429s paused every worker through Redis
    emulator.control.clear_faults()
    verify_clean(cluster, run, sdk, 120)


def unfinished_batches_holding_records(cluster, worker) -> int:
    """Records in flight under batches ``worker`` received and has not finished (per its log)."""
    log = worker.log()
    received = set(re.findall(r"process_batch\[([0-9a-f-]+)\] received", log))
    finished = set(re.findall(r"process_batch\[([0-9a-f-]+)\] succeeded", log))
    open_tasks = sorted(received - finished)
    if not open_tasks:
        return 0
    rows = ledger(
        cluster,
        "SELECT count(*) FROM migration_importrecord WHERE status = 'in_flight' AND claimed_by = ANY(%s)",
        open_tasks,
    )
    return rows[0][0]


def test_killed_worker_records_are_requeued_by_beat_without_a_resume(cluster, sdk, tmp_path):
    emulator = cluster["emulator"]
    emulator.control.set_faults(latency_ms=20)
    # A 3-second lease, and the requeue task on beat every second (tests/migration/lease_settings).
    env = {**cluster["env"], "DJANGO_SETTINGS_MODULE": "tests.migration.lease_settings"}
    with (
        celery_worker("k1", env, concurrency=4, logdir=cluster["logs"]) as doomed,
        celery_worker("k2", env, concurrency=4, logdir=cluster["logs"], beat=True) as survivor,
    ):
        run = start_import(cluster, tmp_path, 300, 6, "--batch-size", "10", "--rate", "60", env=env)
        held = wait_until(
            lambda: unfinished_batches_holding_records(cluster, doomed), 60, "k1 holding records"
        )
        doomed.kill()  # SIGKILL mid-batch: its records stay in flight, its messages unacked
        finished = manage(
            "migration_status",
            str(run),
            "--wait",
            "--timeout",
            "120",
            "--json",
            "--no-progress",
            env=env,
        )
        assert finished.returncode == 0, finished.stdout[-3000:] + survivor.log()[-3000:]
        assert json.loads(finished.stdout)["kinds"]["user"]["created"] == 300
        # Beat recovered the run, by the path that fitted the moment of the kill: k1's records
        # still in flight (requeued), or its batch saved but the run not advanced (advanced).
        recovered = ("record(s) of a dead worker requeued", "stalled after phase")
        assert any(line in survivor.log() for line in recovered), held
    verify_clean(cluster, run, sdk, 300)
