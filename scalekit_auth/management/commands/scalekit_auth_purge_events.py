"""``manage.py scalekit_auth_purge_events``: delete auth and webhook events past their retention.

Exit codes: 0 done (also when nothing was old enough), 2 for bad arguments or settings.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from scalekit_auth.conf import app_settings
from scalekit_auth.events import purge


class Command(BaseCommand):
    help = (
        "Delete auth events (AuthEvent rows) older than --older-than days (default "
        "SCALEKIT_AUTH['EVENT_RETENTION_DAYS']). Run it daily. Exit 2 on bad arguments."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=int,
            metavar="DAYS",
            help="Delete events created more than DAYS days ago (default: "
            f"EVENT_RETENTION_DAYS, {app_settings.EVENT_RETENTION_DAYS} now).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; delete nothing."
        )
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["older_than"]
        source = "--older-than" if days is not None else "SCALEKIT_AUTH['EVENT_RETENTION_DAYS']"
        try:
            result = purge(days, dry_run=options["dry_run"])
        except ValueError as exc:
            raise CommandError(f"{source}: {exc}", returncode=2) from exc
        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict(), indent=2))
            return
        verb = "Would delete" if result.dry_run else "Deleted"
        kinds = ", ".join(f"{n} {kind}" for kind, n in result.by_kind.items())
        self.stdout.write(
            f"{verb} {result.deleted} auth event(s) created before "
            f"{result.cutoff:%Y-%m-%d %H:%M} UTC (older than {result.older_than_days} days)"
            + (f": {kinds}." if kinds else ".")
            + f" {verb} {result.webhook_events} webhook event(s) received before then."
        )
