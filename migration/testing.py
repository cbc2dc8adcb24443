"""Helpers for testing and benchmarking imports against real services on this machine.

``redis_server()`` and ``postgres_server()`` start private servers on free ports in temporary
directories (never the system services) and remove them on exit; ``celery_worker()`` starts a
real Celery worker process of a project; ``write_users_csv()`` and friends generate sources.
They need the ``redis-server`` binary and PostgreSQL's server binaries (``initdb``, ``pg_ctl``,
found in ``/usr/lib/postgresql/*/bin`` or on ``PATH``).

``project_env()``, ``manage()`` and ``celery_worker()`` default to this repository's demo project
(``PROJECT_DIR``, settings ``config.test_settings``, Celery app ``config``). A project that
installs the apps passes its own::

    env = project_env(project_dir=BASE_DIR, settings_module="mysite.test_settings")
    manage("migrate", env=env, project_dir=BASE_DIR)
    with celery_worker("w1", env, app="mysite", project_dir=BASE_DIR): ...
"""

# ruff: noqa: S603 - fixed binaries and arguments, never a shell or user input
from __future__ import annotations

import contextlib
import csv
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: This repository (the checkout): where its ``manage.py`` and demo project ``config`` are.
PROJECT_DIR = Path(__file__).resolve().parent.parent
#: The settings module and Celery app of this repository's demo project (the defaults).
SETTINGS_MODULE = "config.test_settings"
CELERY_APP = "config"


class ServiceUnavailable(RuntimeError):
    """A binary this helper needs is not installed."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.5),
        ):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A private ``redis-server`` (no persistence); yields its URL."""
    binary = shutil.which("redis-server")
    if not binary:
        raise ServiceUnavailable("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="migration-redis-")
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
            "--protected-mode",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        if process.poll() is None:
            process.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def postgres_bin(name: str) -> str:
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    found = candidates[0] if candidates else shutil.which(name)
    if not found:
        raise ServiceUnavailable(
            f"PostgreSQL's {name} is not installed (apt-get install postgresql)"
        )
    return found


@dataclass
class PostgresServer:
    port: int
    user: str

    def url(self, database: str = "postgres") -> str:
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres"):  # noqa: ANN201 - psycopg connection
        import psycopg

        return psycopg.connect(self.url(database), autocommit=True)

    def create_database(self, name: str) -> str:
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextlib.contextmanager
def postgres_server(*settings: str) -> Iterator[PostgresServer]:
    """A private PostgreSQL cluster (trust authentication on 127.0.0.1), removed on exit.

    PostgreSQL refuses to run as root, so as root the cluster runs as the ``postgres`` account
    (or ``nobody``) and its directory is handed to it. ``settings`` are extra ``name=value``
    server settings (e.g. ``shared_preload_libraries=pg_stat_statements``).
    """
    initdb, pg_ctl = postgres_bin("initdb"), postgres_bin("pg_ctl")
    port = free_port()
    root = tempfile.mkdtemp(prefix="migration-pg-")
    data, sockets = os.path.join(root, "data"), os.path.join(root, "sock")
    os.makedirs(sockets)
    run_as: dict = {}
    if os.geteuid() == 0:
        account = None
        for name in ("postgres", "nobody"):
            with contextlib.suppress(KeyError):
                account = pwd.getpwnam(name)
                break
        if account is None:
            raise ServiceUnavailable("running as root and there is no postgres or nobody account")
        for path in (root, sockets):
            os.chown(path, account.pw_uid, account.pw_gid)
        run_as = {"user": account.pw_uid, "group": account.pw_gid}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "cwd": root, **run_as}
    subprocess.run(
        [
            initdb,
            "-D",
            data,
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ],
        check=True,
        **quiet,
    )
    options = (
        f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    options += "".join(f" -c {setting}" for setting in settings)
    subprocess.run(
        [
            pg_ctl,
            "-D",
            data,
            "-o",
            options,
            "-l",
            os.path.join(root, "log"),
            "-w",
            "-t",
            "60",
            "start",
        ],
        check=True,
        **quiet,
    )
    try:
        yield PostgresServer(port=port, user="postgres")
    finally:
        subprocess.run([pg_ctl, "-D", data, "-m", "immediate", "-w", "stop"], check=False, **quiet)
        shutil.rmtree(root, ignore_errors=True)


def project_env(
    *,
    project_dir: str | Path = PROJECT_DIR,
    settings_module: str | None = None,
    **overrides: str,
) -> dict[str, str]:
    """The environment for a subprocess of a project (manage.py, a Celery worker): this one's
    environment, ``project_dir`` first on ``PYTHONPATH``, ``DJANGO_SETTINGS_MODULE`` set to
    ``settings_module`` when given (else this process's, else ``SETTINGS_MODULE``);
    ``overrides`` are variables set last."""
    env = dict(os.environ)
    if settings_module is not None:
        env["DJANGO_SETTINGS_MODULE"] = settings_module
    env.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    env.setdefault("NO_PROXY", "localhost,127.0.0.1")
    env["PYTHONPATH"] = str(project_dir) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(overrides)
    return env


def manage(
    *args: str,
    env: dict[str, str],
    timeout: float = 600,
    project_dir: str | Path = PROJECT_DIR,
) -> subprocess.CompletedProcess:
    """Run ``<project_dir>/manage.py`` with ``args`` in ``project_dir``; returns the completed
    process."""
    project_dir = Path(project_dir)
    return subprocess.run(
        [sys.executable, str(project_dir / "manage.py"), *args],
        env=env,
        cwd=project_dir,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass
class Worker:
    name: str
    process: subprocess.Popen
    logfile: Path

    def log(self) -> str:
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    def kill(self) -> None:
        """SIGKILL the worker and every process of its group (prefork children too)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@contextlib.contextmanager
def celery_worker(
    name: str,
    env: dict[str, str],
    *,
    pool: str = "threads",
    concurrency: int = 4,
    logdir: str | None = None,
    beat: bool = False,
    app: str = CELERY_APP,
    project_dir: str | Path = PROJECT_DIR,
) -> Iterator[Worker]:
    """A real ``celery -A <app> worker`` process started in ``project_dir``, ready to take
    tasks; stopped on exit.

    ``beat``: the worker also runs the beat scheduler (``-B``, schedule file in ``logdir``).
    """
    logdir = logdir or tempfile.mkdtemp(prefix="migration-celery-")
    logfile = Path(logdir) / f"{name}.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            app,
            "worker",
            "-P",
            pool,
            "-c",
            str(concurrency),
            "-n",
            f"{name}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "info",
            "-f",
            str(logfile),
            *(["-B", "-s", str(Path(logdir) / f"{name}-beat-schedule")] if beat else []),
        ],
        env=env,
        cwd=project_dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    worker = Worker(name, process, logfile)
    try:
        deadline = time.monotonic() + 60
        while " ready." not in worker.log():
            if process.poll() is not None:
                raise RuntimeError(f"celery worker {name} exited: {worker.log()[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"celery worker {name} not ready: {worker.log()[-2000:]}")
            time.sleep(0.1)
        yield worker
    finally:
        worker.stop()


def write_organizations_csv(path: str | Path, count: int) -> Path:
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["external_id", "display_name"])
        for index in range(count):
            writer.writerow([f"org-{index:05d}", f"Organization {index}"])
    return path


def write_users_csv(
    path: str | Path, count: int, organizations: int, *, roles: tuple[str, ...] = ("member",)
) -> Path:
    """``count`` users spread over ``organizations`` organizations, one membership each."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(
            [
                "email",
                "external_id",
                "first_name",
                "last_name",
                "email_verified",
                "org_external_id",
                "roles",
            ]
        )
        for index in range(count):
            writer.writerow(
                [
                    f"user{index:07d}@example.com",
                    f"legacy-{index}",
                    "User",
                    str(index),
                    "true",
                    f"org-{index % organizations:05d}",
                    "|".join(roles),
                ]
            )
    return path
