from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ... import runner
from ...batches import ledger_lock, process_stats
from ...conf import app_settings
from ...ingest import create_run
from ...models import ImportRun
from ...reporting import (
    EXIT_OK,
    EXIT_STOPPED,
    EXIT_USAGE,
    cutover_role_settings,
    emit_json,
    run_exit_code,
    run_table,
)
from ...sources import DatabaseSource, SourceError, open_file_source
from ._progress import BatchProgress, progress_flag, wait_for


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


def positive_float(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = (
        "Import roles, organizations and users into Scalekit from files (--roles, --organizations, "
        "--users: .csv, .json or .ndjson) or from this project's database (--from-database). "
        "Exit codes: 0 all imported; 1 some rows failed or were invalid; 2 could not start; "
        "3 the run stopped (missing roles, rejected credentials) or was left running (--async)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--users", metavar="PATH", help="Users file.")
        parser.add_argument("--organizations", metavar="PATH", help="Organizations file.")
        parser.add_argument("--roles", metavar="PATH", help="Role definitions file.")
        parser.add_argument(
            "--from-database",
            action="store_true",
            help="Export this project's users, groups and tenant model.",
        )
        parser.add_argument(
            "--format",
            choices=["csv", "json", "ndjson"],
            help="Format of every file (default: from the extension).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Validate and plan; send nothing."
        )
        parser.add_argument("--batch-size", type=positive_int, help="Records per batch.")
        parser.add_argument(
            "--concurrency", type=positive_int, help="Batches at once (threads) in-process."
        )
        parser.add_argument(
            "--rate",
            type=positive_float,
            help="Requests per second to Scalekit, shared by all workers.",
        )
        parser.add_argument(
            "--burst",
            type=positive_float,
            help="Token-bucket size (default: MIGRATION['RATE_BURST'], else a tenth of a "
            "second's worth of --rate).",
        )
        parser.add_argument(
            "--max-attempts", type=positive_int, help="Attempts per record on transient errors."
        )
        parser.add_argument(
            "--require-roles",
            action="store_true",
            help="Stop if a named role is missing in Scalekit instead of creating it.",
        )
        parser.add_argument(
            "--send-invitation-email",
            action="store_true",
            help="Send Scalekit's invitation email to every imported user.",
        )
        parser.add_argument(
            "--async", dest="use_async", action="store_true", help="Hand the run to Celery workers."
        )
        parser.add_argument(
            "--wait", action="store_true", help="With --async: follow the run until it ends."
        )
        parser.add_argument("--json", action="store_true", help="Print the summary as JSON.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def sources(self, options: dict[str, Any]) -> list[Any]:
        files = [
            (kind, options[name])
            for kind, name in (
                ("role", "roles"),
                ("organization", "organizations"),
                ("user", "users"),
            )
            if options[name]
        ]
        if options["from_database"]:
            if files:
                raise CommandError(
                    "Use either --from-database or files, not both.", returncode=EXIT_USAGE
                )
            return [DatabaseSource("role"), DatabaseSource("organization"), DatabaseSource("user")]
        if not files:
            raise CommandError(
                "Nothing to import: give --users/--organizations/--roles files or --from-database.",
                returncode=EXIT_USAGE,
            )
        return [open_file_source(kind, path, options["format"]) for kind, path in files]

    def handle(self, *args: Any, **options: Any) -> None:
        if options["use_async"] and options["dry_run"]:
            raise CommandError(
                "--dry-run runs in this process; drop --async.", returncode=EXIT_USAGE
            )
        if options["use_async"] and not runner.broker_configured():
            raise CommandError(
                f"--async needs a Celery broker: {app_settings.no_broker_reason()}.",
                returncode=EXIT_USAGE,
            )
        run_options = {
            key: options[key]
            for key in ("batch_size", "concurrency", "rate", "burst", "max_attempts")
            if options[key] is not None
        }
        if options["require_roles"]:
            run_options["require_roles"] = True
        if options["send_invitation_email"]:
            run_options["send_invitation_email"] = True
        run_options["mode"] = "celery" if options["use_async"] else "inprocess"
        try:
            sources = self.sources(options)
            run = create_run(
                sources, options=run_options, dry_run=options["dry_run"], created_by=_whoami()
            )
        except SourceError as exc:
            raise CommandError(str(exc), returncode=EXIT_USAGE) from exc

        show = progress_flag(options)
        code = EXIT_OK
        if options["dry_run"]:
            code = self.dry_run(run, options)
        elif options["use_async"]:
            runner.dispatch(run)
            if options["wait"]:
                run = wait_for(run, show)
            else:
                code = EXIT_STOPPED
                if not options["json"]:
                    self.stdout.write(
                        f"run {run.pk} queued on Celery; follow it with: manage.py migration_status {run.pk} --wait"
                    )
        else:
            progress = BatchProgress(run, show)
            try:
                run = runner.execute(run, progress=progress)
            finally:
                progress.close()
        with ledger_lock():
            summary = runner.summary(run)
        if not options["use_async"]:
            summary["calls"] = process_stats().snapshot()
        role_text = ""
        if options["from_database"]:
            role_data, role_text, role_warning = cutover_role_settings()
            summary.update(role_data)
            role_text = "\n".join(filter(None, [role_text, role_warning]))
        if options["json"]:
            emit_json(summary, self.stdout)
        else:
            if not options["dry_run"]:
                self.stdout.write(run_table(summary))
                calls = summary.get("calls")
                if calls and calls["total_calls"]:
                    self.stdout.write(
                        f"calls to Scalekit: {calls['total_calls']}, rate limited (paused) "
                        f"{calls['rate_limited']} time(s), other non-OK answers "
                        f"{sum(calls['errors'].values()) - calls['rate_limited']}"
                    )
            if role_text:
                self.stdout.write(role_text)
        if code == EXIT_OK:
            code = run_exit_code(summary)
        if code:
            raise SystemExit(code)

    def dry_run(self, run: ImportRun, options: dict[str, Any]) -> int:
        """Plan the roles (users naming a role that exists nowhere become invalid, as in the
        real run), then count: the summary and exit code say what the real run will."""
        roles: list[str] = []
        try:
            plan = runner.plan_roles(run, dry_run=True)
        except Exception as exc:  # noqa: BLE001 - the plan is informative; validation stands
            roles.append(f"roles: could not ask Scalekit ({type(exc).__name__}); roles not checked")
        else:
            roles.append(f"roles already in Scalekit: {', '.join(sorted(plan.existing)) or '-'}")
            roles.append(
                f"roles to create from the source: {', '.join(sorted(plan.to_create)) or '-'}"
            )
            if plan.undefined:
                roles.append(
                    f"roles named but neither in Scalekit nor defined: "
                    f"{', '.join(sorted(plan.undefined))} ({plan.invalidated_users} user row(s) "
                    "naming them are invalid)"
                )
        summary = runner.summary(run)
        invalid = sum(k["invalid"] for k in summary["kinds"].values())
        run.status = (
            ImportRun.Status.COMPLETED_WITH_ERRORS if invalid else ImportRun.Status.COMPLETED
        )
        run.phase = ImportRun.Phase.DONE
        run.message = "dry run: validated, nothing sent"
        run.save(update_fields=["status", "phase", "message"])
        if not options["json"]:
            self.stdout.write("\n".join([run_table(runner.summary(run)), *roles]))
        return EXIT_OK


def _whoami() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - only a label
        return ""
