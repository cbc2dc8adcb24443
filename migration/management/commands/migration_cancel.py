from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ... import runner
from ...models import ImportRun
from ...reporting import EXIT_USAGE, emit_json


class Command(BaseCommand):
    help = (
        "Cancel a running import; workers put back what they have not sent (migration_resume "
        "continues). Exit codes: 0 cancelled, or already cancelled; 2 unknown run, or a run that "
        "is not running (finished, failed, rolled back)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("run", type=int)
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            run = ImportRun.objects.get(pk=options["run"])
        except ImportRun.DoesNotExist:
            raise CommandError(f"No import run {options['run']}.", returncode=EXIT_USAGE) from None
        cancelled = runner.cancel(run)
        if not cancelled and run.status != ImportRun.Status.CANCELLED:
            raise CommandError(
                f"Run {run.pk} is {run.status}: nothing to cancel.", returncode=EXIT_USAGE
            )
        if options["json"]:
            emit_json(
                {"run": run.pk, "status": run.status, "cancelled_now": cancelled}, self.stdout
            )
        else:
            self.stdout.write(f"run {run.pk} cancelled" + ("" if cancelled else " (already)"))
