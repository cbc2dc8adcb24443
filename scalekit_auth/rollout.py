"""Who logs in through Scalekit during the migration (phase 5), and the kill switch.

The decision for one email is stable: a SHA-256 of the lower-cased email, mapped to 0-99 and
compared with the percentage, so raising the percentage only ever adds users. The deny list
wins over the allow list, which wins over the percentage.

How fresh the switch is: each process keeps the ``Rollout`` built from the ``RolloutSettings``
row (or from ``ROLLOUT_PERCENTAGE`` while there is no row) in memory for at most
``ROLLOUT_CACHE_SECONDS``; the first call after that reads the row again with one small
database query. So a process reads the row about once per ``ROLLOUT_CACHE_SECONDS`` (threads
that find the copy expired at the same moment may each read it), and the requests in between
make no query for it. The Django cache is not used. Saving or deleting the row
through the ORM (the admin does) drops the copy of the process that did it (``forget``, on
``post_save``/``post_delete``), so the change applies there at the next request; every other
process sees it within ``ROLLOUT_CACHE_SECONDS``. Changes that send no signal (``update()``,
SQL) and a read that was already in flight during the save also take up to that long.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass

from .conf import app_settings
from .models import RolloutSettings


@dataclass(frozen=True)
class Rollout:
    enabled: bool
    percentage: int
    allow: frozenset[str]
    deny: frozenset[str]

    def bucket(self, email: str) -> int:
        return (
            int.from_bytes(hashlib.sha256(email.strip().lower().encode()).digest()[:4], "big") % 100
        )

    def _listed(self, email: str, entries: frozenset[str]) -> bool:
        email = email.strip().lower()
        return email in entries or ("@" + email.rpartition("@")[2]) in entries

    def uses_scalekit(self, email: str | None = None) -> bool:
        """Whether ``email`` logs in through Scalekit (None: whether anyone might)."""
        if not self.enabled:
            return False
        if email is None:
            return self.percentage > 0 or bool(self.allow)
        if self._listed(email, self.deny):
            return False
        if self._listed(email, self.allow):
            return True
        return self.bucket(email) < self.percentage

    @property
    def is_partial(self) -> bool:
        """True when some users are on Scalekit and some are not (the login asks the email)."""
        return self.enabled and (self.percentage < 100 or bool(self.deny))


def _entries(text: str) -> frozenset[str]:
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


_lock = threading.Lock()
_cached: tuple[float, Rollout] | None = None


def current() -> Rollout:
    global _cached
    cached = _cached
    if cached is not None and time.monotonic() - cached[0] < app_settings.ROLLOUT_CACHE_SECONDS:
        return cached[1]
    row = RolloutSettings.objects.filter(pk=1).first()
    if row is None:
        rollout = Rollout(True, int(app_settings.ROLLOUT_PERCENTAGE), frozenset(), frozenset())
    else:
        rollout = Rollout(
            row.enabled, row.percentage, _entries(row.allow_list), _entries(row.deny_list)
        )
    with _lock:
        _cached = (time.monotonic(), rollout)
    return rollout


def forget(**kwargs: object) -> None:
    """Drop this process's copy of the rollout row (connected to its save and delete)."""
    global _cached
    with _lock:
        _cached = None
