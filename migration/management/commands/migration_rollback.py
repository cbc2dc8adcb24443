from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from scalekit.common.exceptions import ScalekitException

from ...batches import ledger_lock
from ...gateway import Fatal
from ...models import ImportRun
from ...reporting import EXIT_PROBLEMS, EXIT_STOPPED, EXIT_USAGE, emit_json
from ...rollback import RollbackRefused, check_can_roll_back, rollback, to_undo
from ...runner import client_error
from ._progress import bar, progress_flag
from .migration_import import positive_int


class Command(BaseCommand):
    help = (
        "Delete from Scalekit what a run created (users, then organizations, then roles) and undo "
        "what it added to users that already existed (memberships, roles, an external id); "
        "nothing else. Exit codes: 0 done; "
        "1 a deletion failed; 2 could not start (unknown run, run running or records in flight); "
        "3 Scalekit not configured or credentials refused."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("run", type=int)
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")
        parser.add_argument(
            "--concurrency",
            type=positive_int,
            help="Deletions at once (default: the run's, else MIGRATION['CONCURRENCY']).",
        )
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            run = ImportRun.objects.get(pk=options["run"])
        except ImportRun.DoesNotExist:
            raise CommandError(f"No import run {options['run']}.", returncode=EXIT_USAGE) from None
        try:
            check_can_roll_back(run)
        except RollbackRefused as exc:
            raise CommandError(str(exc), returncode=EXIT_USAGE) from None
        with ledger_lock():
            touched = to_undo(run).count()
            created = to_undo(run).filter(outcome="created").count()
        if not options["yes"]:
            answer = input(
                f"Delete {created} object(s) run {run.pk} created in Scalekit and undo what "
                f"it added to {touched - created} existing user(s)? Type 'yes': "
            )
            if answer.strip().lower() != "yes":
                raise CommandError("Rollback not confirmed.", returncode=EXIT_USAGE)
        progress = bar(touched, progress_flag(options), f"rollback {run.pk}")
        try:
            report = rollback(run, concurrency=options["concurrency"], progress=progress.update)
        except RollbackRefused as exc:  # a worker claimed records since the check above
            raise CommandError(str(exc), returncode=EXIT_USAGE) from None
        except (ImproperlyConfigured, ScalekitException) as exc:
            raise CommandError(client_error(exc), returncode=EXIT_STOPPED) from None
        except Fatal as exc:
            raise CommandError(
                f"Scalekit refused the credentials: {exc.message}", returncode=EXIT_STOPPED
            ) from None
        finally:
            progress.close()
        data = {
            "run": run.pk,
            "deleted": report.deleted,
            "memberships_removed": report.memberships_removed,
            "roles_removed": report.roles_removed,
            "external_ids_cleared": report.external_ids_cleared,
            "kept_permissions": report.kept_permissions,
            "errors": report.errors,
        }
        if options["json"]:
            emit_json(data, self.stdout)
        else:
            deleted = ", ".join(f"{n} {kind}(s)" for kind, n in report.deleted.items()) or "nothing"
            self.stdout.write(
                f"run {run.pk}: deleted {deleted}; {report.memberships_removed} membership(s) "
                f"removed, {report.roles_removed} added role(s) taken off, "
                f"{report.external_ids_cleared} external id(s) cleared"
            )
            for permission, role in report.kept_permissions.items():
                self.stdout.write(f"kept permission {permission}: role {role} holds it")
            for error in report.errors:
                self.stderr.write(error)
        if report.errors:
            raise SystemExit(EXIT_PROBLEMS)
