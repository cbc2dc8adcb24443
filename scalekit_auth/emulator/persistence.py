"""A small SQLite key-value store of serialized protobuf messages, for an emulator that keeps its
state across restarts.

Rows are ``(kind, key) -> blob``. The directory stores its organizations, users, roles and
permissions under ``directory.*`` kinds; other parts of the emulator (signing keys, registered
redirect URIs) use their own kinds in the same file.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    blob BLOB NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID
"""


class SqlitePersistence:
    """Thread-safe ``(kind, key) -> bytes`` store in one SQLite file (WAL, synchronous=NORMAL).

    One connection is shared behind a lock; every write commits at once, so a crash loses at most
    the write in progress (WAL with synchronous=NORMAL may drop the last commits on power loss,
    never on a process crash).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            str(self.path), check_same_thread=False, isolation_level=None
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"persistence store {self.path} is closed")
        return self._conn

    def load(self, kind: str) -> Iterator[tuple[str, bytes]]:
        """Every ``(key, blob)`` of ``kind``, in key order. Read at once, so iterating is safe
        while other threads write."""
        with self._lock:
            rows = (
                self._connection()
                .execute("SELECT key, blob FROM blobs WHERE kind = ? ORDER BY key", (kind,))
                .fetchall()
            )
        return iter([(key, bytes(blob)) for key, blob in rows])

    def save(self, kind: str, key: str, blob: bytes) -> None:
        with self._lock:
            self._connection().execute(
                "INSERT OR REPLACE INTO blobs (kind, key, blob) VALUES (?, ?, ?)",
                (kind, key, blob),
            )

    def save_many(self, kind: str, items: Iterable[tuple[str, bytes]]) -> None:
        """Save several rows in one transaction."""
        rows = list(items)
        if not rows:
            return
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN")
            try:
                conn.executemany(
                    "INSERT OR REPLACE INTO blobs (kind, key, blob) VALUES (?, ?, ?)",
                    [(kind, key, blob) for key, blob in rows],
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def delete(self, kind: str, key: str) -> None:
        with self._lock:
            self._connection().execute("DELETE FROM blobs WHERE kind = ? AND key = ?", (kind, key))

    def clear(self, kinds: Iterable[str] | None = None) -> None:
        """Delete every row, or only the rows of the given kinds."""
        with self._lock:
            conn = self._connection()
            if kinds is None:
                conn.execute("DELETE FROM blobs")
            else:
                conn.executemany("DELETE FROM blobs WHERE kind = ?", [(k,) for k in kinds])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __repr__(self) -> str:
        return f"SqlitePersistence({str(self.path)!r})"
