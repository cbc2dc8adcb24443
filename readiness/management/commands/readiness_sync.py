"""``manage.py readiness_sync``: bring the checklist tables up to ``readiness/catalogue.py``.

Titles, order and guidance follow the catalogue; owners, evidence, statuses, sign-offs and history
are kept. Items that left the catalogue are retired, not deleted. Safe to run on every deploy.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from readiness.sync import sync


class _DryRun(Exception):
    pass


class Command(BaseCommand):
    help = "Sync the readiness checklists with the catalogue, keeping every sign-off."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Show what would change.")
        parser.add_argument("--json", action="store_true", help="Print the changes as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with transaction.atomic():
                report = sync()
                if options["dry_run"]:
                    raise _DryRun
        except _DryRun:
            pass
        if options["json"]:
            self.stdout.write(
                json.dumps({**report.as_dict(), "dry_run": options["dry_run"]}, indent=2)
            )
            return
        verb = "Would" if options["dry_run"] else "Did"
        if not report.changed:
            self.stdout.write("The checklists already match the catalogue.")
            return
        for label, keys in (
            ("create sections", report.sections_created),
            ("update sections", report.sections_updated),
            ("retire sections", report.sections_retired),
            ("create items", report.items_created),
            ("update items", list(report.items_updated)),
            ("retire items", report.items_retired),
        ):
            if keys:
                self.stdout.write(f"{verb} {label}: {', '.join(keys)}")
