from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ...exports import failure_rows, write_failures
from ...models import ImportRun
from ...reporting import EXIT_USAGE, emit_json


class Command(BaseCommand):
    help = (
        "Write the failed and invalid rows of a run as CSV, with row numbers and reasons "
        "(--json: the same rows as JSON). Exit codes: 0 written; 2 unknown run or unwritable file."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("run", type=int)
        parser.add_argument("--output", "-o", help="File to write (default: standard output).")
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print the rows as JSON (with -o: the CSV goes to the file, a JSON summary here).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            run = ImportRun.objects.get(pk=options["run"])
        except ImportRun.DoesNotExist:
            raise CommandError(f"No import run {options['run']}.", returncode=EXIT_USAGE) from None
        if options["output"]:
            try:
                with open(options["output"], "w", newline="", encoding="utf-8") as out:
                    count = write_failures(out, [run])
            except OSError as exc:
                raise CommandError(
                    f"Cannot write {options['output']}: {exc.strerror}", returncode=EXIT_USAGE
                ) from None
            if options["json"]:
                emit_json({"run": run.pk, "rows": count, "output": options["output"]}, self.stdout)
            else:
                self.stderr.write(f"{count} row(s) written to {options['output']}")
        elif options["json"]:
            emit_json({"run": run.pk, "failures": list(failure_rows([run]))}, self.stdout)
        else:
            write_failures(self.stdout, [run])
