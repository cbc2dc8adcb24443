from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from scalekit.common.exceptions import ScalekitException

from ...batches import ledger_lock
from ...gateway import Fatal, ScalekitCallError
from ...models import ImportRecord, ImportRun
from ...reporting import EXIT_PROBLEMS, EXIT_STOPPED, EXIT_USAGE, emit_json, table
from ...runner import client_error
from ...verify import verify
from ._progress import bar, progress_flag
from .migration_import import positive_int


class Command(BaseCommand):
    help = (
        "Reconcile every succeeded record of a run against Scalekit (exists, email, external id, "
        "memberships and roles); store and print the differences. Exit codes: 0 no differences; "
        "1 differences found; 2 unknown run; 3 Scalekit not configured, unreachable or "
        "credentials refused."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("run", type=int)
        parser.add_argument(
            "--concurrency", type=positive_int, help="Lookups at once (default: the run's)."
        )
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            run = ImportRun.objects.get(pk=options["run"])
        except ImportRun.DoesNotExist:
            raise CommandError(f"No import run {options['run']}.", returncode=EXIT_USAGE) from None
        with ledger_lock():
            total = run.records.filter(status=ImportRecord.Status.SUCCEEDED).count()
        progress = bar(total, progress_flag(options), f"verify {run.pk}")
        try:
            report = verify(run, concurrency=options["concurrency"], progress=progress.update)
        except (ImproperlyConfigured, ScalekitException) as exc:
            raise CommandError(client_error(exc), returncode=EXIT_STOPPED) from None
        except Fatal as exc:
            raise CommandError(
                f"Scalekit refused the credentials: {exc.message}", returncode=EXIT_STOPPED
            ) from None
        except ScalekitCallError as exc:
            raise CommandError(
                f"Scalekit could not be reached: {exc.message}", returncode=EXIT_STOPPED
            ) from None
        finally:
            progress.close()
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
