"""Output of the commands: plain tables for people, JSON for machines, exit codes for CI."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import IO, Any

#: Exit codes shared by every migration command.
EXIT_OK = 0  # done, nothing failed
EXIT_PROBLEMS = 1  # done, but records failed or are invalid / differences were found
EXIT_USAGE = 2  # could not start: bad arguments, unreadable source, configuration
EXIT_STOPPED = 3  # the run stopped or is not finished (missing roles, credentials, cancelled)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [
        ["" if v is None else str(v) for v in row] for row in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for index, row in enumerate(cells):
        lines.append("  ".join(value.ljust(widths[i]) for i, value in enumerate(row)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run_table(summary: dict[str, Any]) -> str:
    columns = [
        "rows",
        "created",
        "existing",
        "updated",
        "failed",
        "invalid",
        "pending",
        "rolled_back",
    ]
    rows = [[kind, *(counts[c] for c in columns)] for kind, counts in summary["kinds"].items()]
    totals = ["total", *(sum(counts[c] for counts in summary["kinds"].values()) for c in columns)]
    head = (
        f"run {summary['run']}  status={summary['status']}  phase={summary['phase']}"
        + ("  (dry run: nothing sent)" if summary["dry_run"] else "")
        + f"\nsource: {summary['source']}"
    )
    if summary.get("throughput_per_s"):
        head += f"\nthroughput: {summary['throughput_per_s']:.1f} records/s"
    if summary.get("message"):
        head += f"\nmessage: {summary['message']}"
    return head + "\n" + table(["kind", *columns], [*rows, totals])


def emit_json(data: Any, out: IO[str] | None = None) -> None:
    (out or sys.stdout).write(json.dumps(data, indent=2, default=str) + "\n")


def run_exit_code(summary: dict[str, Any]) -> int:
    status = summary["status"]
    if status == "completed":
        return EXIT_OK
    if status in ("completed_with_errors", "rolled_back"):
        return EXIT_PROBLEMS
    return EXIT_STOPPED


def cutover_role_settings() -> tuple[dict[str, Any], str, str]:
    """For ``--from-database``: the ``SCALEKIT_AUTH`` role settings to set before the cut-over
    (``sources.database.role_settings``) and which users the settings configured now would
    change at their first login through Scalekit: the JSON data, the settings as text, and a
    warning ("" when the configured settings change nobody)."""
    from django.core.exceptions import ImproperlyConfigured

    from .sources.database import first_login_changes, role_settings

    wanted = role_settings()
    data: dict[str, Any] = {"scalekit_auth_role_settings": wanted.as_dict()}
    text = "\n".join(
        [
            "Before the cut-over, set these in SCALEKIT_AUTH: at each user's first login through",
            "Scalekit they give back the groups and staff/superuser flags the user has now (other",
            "values make role sync remove groups and clear is_staff/is_superuser):",
            wanted.snippet(),
        ]
    )
    try:
        changes = first_login_changes()
    except ImproperlyConfigured as exc:
        data["first_login_changes"] = {"error": str(exc)}
        return data, text, f"WARNING: SCALEKIT_AUTH's role settings cannot be read: {exc}"
    data["first_login_changes"] = changes.as_dict()
    warning = ""
    if changes.users:
        warning = (
            "WARNING: SCALEKIT_AUTH's role settings as configured now would change the groups "
            f"or flags of {changes.users} imported user(s) at their first login through "
            "Scalekit, e.g. " + "; ".join(change.describe() for change in changes.examples) + "."
        )
    return data, text, warning
