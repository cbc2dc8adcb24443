from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ... import runner
from ...batches import ledger_lock
from ...conf import app_settings
from ...models import ImportRun
from ...reporting import EXIT_STOPPED, EXIT_USAGE, emit_json, run_exit_code, run_table
from ._progress import BatchProgress, progress_flag, wait_for


class Command(BaseCommand):
    help = (
        "Continue a run: send what is pending, what failed transiently, and in-flight records whose "
        "worker is gone (re-checked against Scalekit first). Refuses, unless --takeover, a run "
        "still running or with records in flight under a live lease (a process is still "
        "sending them); always a run whose source was not fully read. Exit codes as "
        "migration_import."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("run", type=int, help="Run id.")
        parser.add_argument(
            "--takeover",
            action="store_true",
            help="Treat every in-flight record as abandoned, and resume a run still marked "
            "running (say so only when no worker of this run is alive).",
        )
        parser.add_argument(
            "--retry-failed", action="store_true", help="Also retry permanently failed records."
        )
        parser.add_argument(
            "--async", dest="use_async", action="store_true", help="Hand the run to Celery workers."
        )
        parser.add_argument(
            "--wait", action="store_true", help="With --async: follow the run until it ends."
        )
        parser.add_argument("--json", action="store_true")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            run = ImportRun.objects.get(pk=options["run"])
        except ImportRun.DoesNotExist:
            raise CommandError(f"No import run {options['run']}.", returncode=EXIT_USAGE) from None
        try:
            if options["takeover"]:
                runner.ensure_resumable(run)
            else:
                runner.ensure_can_continue(run)
        except runner.NotResumable as exc:
            raise CommandError(str(exc), returncode=EXIT_USAGE) from None
        if options["use_async"] and not runner.broker_configured():
            raise CommandError(
                f"--async needs a Celery broker: {app_settings.no_broker_reason()}.",
                returncode=EXIT_USAGE,
            )
        changed = runner.prepare_resume(
            run, takeover=options["takeover"], retry_failed=options["retry_failed"]
        )
        if not options["json"]:
            self.stdout.write(
                f"run {run.pk}: {changed['requeued_failed']} failed record(s) requeued, "
                f"{changed['taken_over']} in-flight record(s) taken over"
            )
        show = progress_flag(options)
        code = 0
        if options["use_async"]:
            runner.dispatch(run)
            if options["wait"]:
                run = wait_for(run, show)
            else:
                code = EXIT_STOPPED
        else:
            progress = BatchProgress(run, show)
            try:
                run = runner.execute(run, progress=progress)
            finally:
                progress.close()
        with ledger_lock():
            summary = runner.summary(run)
        if options["json"]:
            emit_json({**summary, **changed}, self.stdout)
        else:
            self.stdout.write(run_table(summary))
        code = code or run_exit_code(summary)
        if code:
            raise SystemExit(code)
