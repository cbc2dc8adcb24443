"""How many CreateUserAndMembership calls per second the emulator serves through the real SDK.

Starts an emulator in a child process (so the client threads here do not share its GIL, as
with the real service), then creates users through ``ScalekitClient`` with 1, 4 and 16
concurrent threads sharing one client, as an import does. No injected latency.

    .venv/bin/python bench/emulator_throughput.py [--seconds 5]

The last line is a machine-readable summary.
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def start_emulator(state_dir: str) -> tuple[subprocess.Popen, dict[str, str]]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings"}
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
        env=env,
    )
    line = process.stdout.readline()
    if not line.startswith("SCALEKIT_ENVIRONMENT_URL="):
        process.kill()
        raise SystemExit(f"emulator did not start: {line!r}")
    return process, dict(part.split("=", 1) for part in line.split())


def measure(client, org_id: str, threads: int, seconds: float, counter: itertools.count) -> float:
    from scalekit.v1.users import users_pb2

    done = [0] * threads
    stop = time.monotonic() + seconds

    def work(slot: int) -> None:
        while time.monotonic() < stop:
            n = next(counter)
            client.users.create_user_and_membership(
                org_id,
                users_pb2.CreateUser(email=f"bench{n}@example.com", external_id=f"bench-{n}"),
                send_invitation_email=False,
            )
            done[slot] += 1

    started = time.monotonic()
    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(done) / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per row")
    args = parser.parse_args()

    import tempfile

    with tempfile.TemporaryDirectory() as state_dir:
        process, env = start_emulator(state_dir)
        try:
            os.environ["REQUESTS_CA_BUNDLE"] = env["SCALEKIT_CA_BUNDLE"]
            os.environ["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] = env["SCALEKIT_CA_BUNDLE"]
            from scalekit import ScalekitClient
            from scalekit.v1.organizations import organizations_pb2

            client = ScalekitClient(
                env["SCALEKIT_ENVIRONMENT_URL"],
                env["SCALEKIT_CLIENT_ID"],
                env["SCALEKIT_CLIENT_SECRET"],
            )
            org = client.organization.create_organization(
                organizations_pb2.CreateOrganization(display_name="Bench")
            )[0].organization
            counter = itertools.count()
            measure(client, org.id, 4, 1.0, counter)  # warm up the channel and the server's pool
            results = {n: measure(client, org.id, n, args.seconds, counter) for n in (1, 4, 16)}
        finally:
            process.terminate()
            process.wait(timeout=10)

    print(f"{'client threads':>15} | {'CreateUserAndMembership calls/s':>32}")
    print(f"{'-' * 15}-+-{'-' * 32}")
    for threads, rate in results.items():
        print(f"{threads:>15} | {rate:>32.0f}")
    print("target: >= 300 calls/s with 16 threads")
    print("RESULT " + " ".join(f"calls_per_s_{n}={rate:.0f}" for n, rate in results.items()))


if __name__ == "__main__":
    main()
