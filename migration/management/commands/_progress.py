"""Progress bars shared by the import commands (tqdm on stderr; off when not a terminal)."""

from __future__ import annotations

import time
from typing import Any

from tqdm import tqdm

from ...batches import BatchResult, ledger_lock
from ...models import ImportRun


def bar(total: int, enabled: bool | None, desc: str) -> tqdm:
    disable = None if enabled is None else not enabled  # None: only on a terminal
    return tqdm(total=total, unit="rec", desc=desc, disable=disable, leave=True)


class BatchProgress:
    """Feeds a bar from the in-process batches as they finish."""

    def __init__(self, run: ImportRun, enabled: bool | None) -> None:
        with ledger_lock():
            run.refresh_counts()
        remaining = run.count("pending") + run.count("in_flight")
        self.bar = bar(remaining, enabled, f"run {run.pk}")

    def __call__(self, result: BatchResult) -> None:
        self.bar.update(result.succeeded + result.failed)
        self.bar.set_postfix(kind=result.kind, failed=result.failed, refresh=False)

    def close(self) -> None:
        self.bar.close()


def wait_for(
    run: ImportRun, enabled: bool | None, poll: float = 1.0, timeout: float | None = None
) -> ImportRun:
    """Follow a run handed to Celery until it is no longer running (or ``timeout``)."""
    started = time.monotonic()
    run.refresh_counts()
    progress = bar(run.to_send, enabled, f"run {run.pk}")
    shown = 0
    try:
        while True:
            run.refresh_from_db()
            run.refresh_counts()
            progress.update(max(run.done - shown, 0))
            shown = max(shown, run.done)
            if run.status != ImportRun.Status.RUNNING:
                return run
            if timeout is not None and time.monotonic() - started > timeout:
                return run
            time.sleep(poll)
    finally:
        progress.close()


def progress_flag(options: dict[str, Any]) -> bool | None:
    if options.get("json") or options.get("no_progress"):
        return False
    return None
