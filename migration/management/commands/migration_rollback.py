from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ...models import ImportRun
from ...reporting import EXIT_PROBLEMS, EXIT_USAGE, emit_json
from ...rollback import rollback


class Command(BaseCommand):
    help = (
        "Delete from Scalekit what a run created (users, then organizations, then roles) and the "
        "memberships it added to users that already existed; nothing else. Exit 1 if a deletion failed."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("run", type=int)
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")
        parser.add_argument("--concurrency", type=int, default=8)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            run = ImportRun.objects.get(pk=options["run"])
        except ImportRun.DoesNotExist:
            raise CommandError(f"No import run {options['run']}.", returncode=EXIT_USAGE) from None
        if run.status in (ImportRun.Status.RUNNING, ImportRun.Status.PENDING):
            raise CommandError(
                f"Run {run.pk} is {run.status}: cancel it first (migration_cancel).",
                returncode=EXIT_USAGE,
            )
        created = run.records.filter(status="succeeded", outcome="created").count()
        if not options["yes"]:
            answer = input(
                f"Delete {created} object(s) run {run.pk} created in Scalekit? Type 'yes': "
            )
            if answer.strip().lower() != "yes":
                raise CommandError("Rollback not confirmed.", returncode=EXIT_USAGE)
        report = rollback(run, concurrency=options["concurrency"])
        data = {
            "run": run.pk,
            "deleted": report.deleted,
            "memberships_removed": report.memberships_removed,
            "errors": report.errors,
        }
        if options["json"]:
            emit_json(data, self.stdout)
        else:
            deleted = ", ".join(f"{n} {kind}(s)" for kind, n in report.deleted.items()) or "nothing"
            self.stdout.write(
                f"run {run.pk}: deleted {deleted}; {report.memberships_removed} membership(s) removed"
            )
            for error in report.errors:
                self.stderr.write(error)
        if report.errors:
            raise SystemExit(EXIT_PROBLEMS)
