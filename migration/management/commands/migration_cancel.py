from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ... import runner
from ...models import ImportRun
from ...reporting import EXIT_PROBLEMS, EXIT_USAGE


class Command(BaseCommand):
    help = "Cancel a running import; workers put back what they have not sent (migration_resume continues)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("run", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            run = ImportRun.objects.get(pk=options["run"])
        except ImportRun.DoesNotExist:
            raise CommandError(f"No import run {options['run']}.", returncode=EXIT_USAGE) from None
        if not runner.cancel(run):
            self.stderr.write(f"run {run.pk} is {run.status}: nothing to cancel")
            raise SystemExit(EXIT_PROBLEMS)
        self.stdout.write(f"run {run.pk} cancelled")
