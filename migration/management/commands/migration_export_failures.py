from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ...exports import write_failures
from ...models import ImportRun
from ...reporting import EXIT_USAGE


class Command(BaseCommand):
    help = "Write the failed and invalid rows of a run as CSV, with row numbers and reasons."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("run", type=int)
        parser.add_argument("--output", "-o", help="File to write (default: standard output).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            run = ImportRun.objects.get(pk=options["run"])
        except ImportRun.DoesNotExist:
            raise CommandError(f"No import run {options['run']}.", returncode=EXIT_USAGE) from None
        if options["output"]:
            with open(options["output"], "w", newline="", encoding="utf-8") as out:
                count = write_failures(out, [run])
            self.stderr.write(f"{count} row(s) written to {options['output']}")
        else:
            count = write_failures(self.stdout if self.stdout else sys.stdout, [run])
