from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ... import runner
from ...models import ImportRun
from ...reporting import EXIT_USAGE, emit_json, run_exit_code, run_table, table
from ._progress import progress_flag, wait_for


class Command(BaseCommand):
    help = (
        "Show a run (counts per kind and state, throughput, ETA) or, without a run id, the latest "
        "runs. Exit codes for a run: 0 completed; 1 completed with failed or invalid records; "
        "3 not finished, cancelled or failed."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "run", type=int, nargs="?", help="Run id (default: list the latest runs)."
        )
        parser.add_argument(
            "--wait", action="store_true", help="Follow the run until it is no longer running."
        )
        parser.add_argument(
            "--timeout", type=float, help="With --wait: give up after this many seconds."
        )
        parser.add_argument("--json", action="store_true")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["run"] is None:
            runs = list(ImportRun.objects.order_by("-pk")[:20])
            rows = []
            for run in runs:
                rows.append(
                    [
                        run.pk,
                        run.status,
                        run.phase,
                        run.source,
                        f"{100 * run.progress:.1f}%",
                        run.count("succeeded"),
                        run.count("failed"),
                        run.count("invalid"),
                        f"{run.throughput:.1f}/s" if run.throughput else "-",
                    ]
                )
            if options["json"]:
                emit_json([runner.summary(run) for run in runs], self.stdout)
            else:
                self.stdout.write(
                    table(
                        [
                            "run",
                            "status",
                            "phase",
                            "source",
                            "progress",
                            "succeeded",
                            "failed",
                            "invalid",
                            "rate",
                        ],
                        rows,
                    )
                )
            return
        try:
            run = ImportRun.objects.get(pk=options["run"])
        except ImportRun.DoesNotExist:
            raise CommandError(f"No import run {options['run']}.", returncode=EXIT_USAGE) from None
        if options["wait"]:
            run = wait_for(run, progress_flag(options), timeout=options["timeout"])
        summary = runner.summary(run)
        if options["json"]:
            emit_json(summary, self.stdout)
        else:
            self.stdout.write(run_table(summary))
            if summary["eta_seconds"]:
                self.stdout.write(f"ETA: {run.eta}")
        code = run_exit_code(summary)
        if code:
            raise SystemExit(code)
