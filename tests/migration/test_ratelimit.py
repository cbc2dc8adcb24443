from __future__ import annotations

import threading
import time

import pytest

from migration.ratelimit import LocalTokenBucket, RedisTokenBucket, default_burst
from migration.testing import ServiceUnavailable, redis_server


def drain(bucket, threads: int, seconds: float) -> int:
    """How many tokens ``threads`` threads get from ``bucket`` in ``seconds``."""
    count = 0
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def work() -> None:
        nonlocal count
        while time.monotonic() < stop:
            bucket.acquire()
            if time.monotonic() < stop:
                with lock:
                    count += 1

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return count


def test_default_burst_is_a_tenth_of_a_second():
    assert default_burst(200, None) == 20
    assert default_burst(5, None) == 1
    assert default_burst(200, 50) == 50


def test_local_bucket_holds_the_rate_across_threads():
    got = drain(LocalTokenBucket(rate=50, burst=5), threads=8, seconds=1.0)
    # At most 50/s plus the burst of 5; the lower bound leaves room for a busy CI machine.
    assert 35 <= got <= 56, got


def test_pause_holds_acquire_back():
    bucket = LocalTokenBucket(rate=100, burst=10)
    bucket.pause(0.3)
    started = time.monotonic()
    bucket.acquire()
    assert time.monotonic() - started >= 0.27
    assert bucket.pauses() == 1


def test_a_shorter_pause_does_not_cut_the_one_in_force():
    bucket = LocalTokenBucket(rate=100, burst=10)
    started = time.monotonic()
    bucket.pause(0.4)
    bucket.pause(0.01)
    bucket.acquire()
    assert time.monotonic() - started >= 0.37
    assert bucket.pauses() == 1
    bucket.pause(0.5)  # a longer one does extend it
    assert bucket.pauses() == 2


def test_bucket_restarts_empty_after_a_pause():
    """The burst is not available at once when the pause ends: 20 tokens at 100/s take 0.2 s."""
    bucket = LocalTokenBucket(rate=100, burst=20)
    started = time.monotonic()
    bucket.pause(0.1)
    for _ in range(20):
        bucket.acquire()
    # Full at the end of the pause it would be about 0.1 s.
    assert time.monotonic() - started >= 0.28


def test_pause_stops_every_thread_and_a_shorter_one_from_another_thread_changes_nothing():
    bucket = LocalTokenBucket(rate=1000, burst=100)
    ready = threading.Barrier(5)
    got: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        ready.wait()
        bucket.acquire()
        with lock:
            got.append(time.monotonic())

    def short_pause() -> None:
        ready.wait()
        bucket.pause(0.01)  # another worker's RESOURCE_EXHAUSTED with a short retry-after

    threads = [threading.Thread(target=work) for _ in range(4)]
    threads.append(threading.Thread(target=short_pause))
    started = time.monotonic()
    bucket.pause(0.4)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 4
    assert min(got) - started >= 0.37, [round(t - started, 3) for t in got]
    assert bucket.pauses() == 1


@pytest.fixture(scope="module")
def redis_url():
    try:
        with redis_server() as url:
            yield url
    except ServiceUnavailable as exc:
        pytest.skip(str(exc))


@pytest.mark.celery
def test_redis_bucket_is_shared_by_separate_clients(redis_url):
    # Two buckets with their own connections, like two workers on two machines.
    a = RedisTokenBucket(redis_url, "test:shared", rate=40, burst=4)
    b = RedisTokenBucket(redis_url, "test:shared", rate=40, burst=4)
    a.reset()
    results = []
    threads = [
        threading.Thread(target=lambda x=x: results.append(drain(x, 4, 1.0))) for x in (a, b)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 25 <= sum(results) <= 46, results  # one shared 40/s plus a burst of 4, not 80/s
    assert min(results) > 5  # both got a share


@pytest.mark.celery
def test_redis_pause_reaches_every_client(redis_url):
    a = RedisTokenBucket(redis_url, "test:pause", rate=100, burst=10)
    b = RedisTokenBucket(redis_url, "test:pause", rate=100, burst=10)
    a.reset()
    a.pause(0.4)
    started = time.monotonic()
    b.acquire()
    assert time.monotonic() - started >= 0.35
    assert b.pauses() == 1


@pytest.mark.celery
def test_redis_shorter_pause_does_not_cut_the_one_in_force(redis_url):
    a = RedisTokenBucket(redis_url, "test:short-pause", rate=100, burst=10)
    b = RedisTokenBucket(redis_url, "test:short-pause", rate=100, burst=10)
    a.reset()
    started = time.monotonic()
    a.pause(0.4)
    b.pause(0.01)
    a.acquire()
    assert time.monotonic() - started >= 0.35
    assert b.pauses() == 1
