from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ...models import ImportRun
from ...reporting import EXIT_PROBLEMS, EXIT_USAGE, emit_json, table
from ...verify import verify


class Command(BaseCommand):
    help = (
        "Reconcile every succeeded record of a run against Scalekit (exists, email, external id, "
        "memberships and roles); store and print the differences. Exit 1 when there are any."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("run", type=int)
        parser.add_argument("--concurrency", type=int, help="Lookups at once (default: the run's).")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            run = ImportRun.objects.get(pk=options["run"])
        except ImportRun.DoesNotExist:
            raise CommandError(f"No import run {options['run']}.", returncode=EXIT_USAGE) from None
        report = verify(run, concurrency=options["concurrency"])
        if options["json"]:
            emit_json(
                {
                    "run": run.pk,
                    "checked": report.checked,
                    "differences": [d.as_dict() for d in report.differences],
                },
                self.stdout,
            )
        else:
            self.stdout.write(
                f"run {run.pk}: {report.checked} record(s) checked, {len(report.differences)} difference(s)"
            )
            if report.differences:
                rows = [
                    [d.kind, d.key, d.field, d.expected, d.actual] for d in report.differences[:200]
                ]
                self.stdout.write(table(["kind", "key", "field", "expected", "in Scalekit"], rows))
                if len(report.differences) > 200:
                    self.stdout.write(
                        f"... and {len(report.differences) - 200} more (see the admin)"
                    )
        if report.differences:
            raise SystemExit(EXIT_PROBLEMS)
