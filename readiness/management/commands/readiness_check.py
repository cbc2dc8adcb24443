"""``manage.py readiness_check``: run the readiness checks, print a table or JSON, gate CI.

Exit codes: 0 when no blocker fails, 1 when at least one blocker fails (or, with
``--fail-level advisory``, anything fails or warns), 2 for bad arguments.

A failing blocker is an E check of this run that fails on an item the dashboard shows failing:
the same rule, stored or not (``--no-store`` derives the statuses in memory). A W check is
advisory: it never fails a blocker item, only ``--fail-level advisory``. A check the run did not
run (a network check with ``--no-network``) is not judged; an earlier stored failure of it keeps
its item failing on the dashboard.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from readiness.models import CheckRun
from readiness.registry import BAD_OUTCOMES, KINDS, WARN
from readiness.runner import RunReport, run_checks, select_probes

SYMBOLS = {
    "pass": "PASS",
    "warn": "WARN",
    "fail": "FAIL",
    "error": "ERROR",
    "waived": "WAIVED",
    "skip": "SKIP",
}


class Command(BaseCommand):
    # It reports misconfiguration itself (the system checks among its probes), so it must run
    # on a project that Django's checks would stop.
    requires_system_checks: list[str] = []
    help = "Run the automated readiness checks; exit 1 when a blocker fails."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--section",
            action="append",
            default=[],
            metavar="KEY",
            help="Only the checks of this section (repeatable), e.g. quick.",
        )
        parser.add_argument(
            "--item",
            action="append",
            default=[],
            metavar="KEY",
            help="Only the checks of this item (repeatable), e.g. A09.",
        )
        parser.add_argument(
            "--kind",
            action="append",
            default=[],
            choices=sorted(KINDS),
            help="Only checks of this kind (repeatable).",
        )
        parser.add_argument(
            "--network",
            dest="network",
            action="store_true",
            default=True,
            help="Run the network probes (the default).",
        )
        parser.add_argument(
            "--no-network",
            dest="network",
            action="store_false",
            help="Skip every probe that leaves the process.",
        )
        parser.add_argument("--json", action="store_true", help="Print the results as JSON.")
        parser.add_argument(
            "--fail-level",
            choices=("blocker", "advisory"),
            default="blocker",
            help="blocker: exit 1 on a failing blocker (default); advisory: on any "
            "failure or warning.",
        )
        parser.add_argument(
            "--no-store",
            dest="store",
            action="store_false",
            help="Do not record the run or update the checklist.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        probes = select_probes(
            sections=options["section"], items=options["item"], kinds=options["kind"]
        )
        if not probes:
            raise CommandError(
                "No readiness check matches the given --section/--item/--kind.", returncode=2
            )
        report = run_checks(
            probes,
            network=options["network"],
            store=options["store"],
            trigger=CheckRun.Trigger.COMMAND,
        )
        failing = self.failing(report, options["fail_level"])
        if options["json"]:
            payload = report.as_dict()
            payload["ok"] = not failing
            payload["fail_level"] = options["fail_level"]
            self.stdout.write(json.dumps(payload, indent=2, default=str))
        else:
            self.print_table(report, failing, options["fail_level"] == "blocker")
        if failing:
            sys.exit(1)

    @staticmethod
    def failing(report: RunReport, level: str) -> list[Any]:
        if level == "blocker":
            return report.failing_blockers
        return [
            o
            for o in report.outcomes
            if o.status in BAD_OUTCOMES | {WARN} and o.item_status not in ("signed_off", "na")
        ]

    def print_table(self, report: RunReport, failing: list[Any], blockers_only: bool) -> None:
        style = {"pass": self.style.SUCCESS, "warn": self.style.WARNING, "skip": self.style.NOTICE}
        rows = [
            (
                o.probe.id.split(".")[1],
                o.probe.item,
                o.probe.kind,
                SYMBOLS[o.status],
                o.probe.title,
                o.result.message,
            )
            for o in report.outcomes
        ]
        width = max((len(r[4]) for r in rows), default=10)
        self.stdout.write(f"{'ID':5} {'ITEM':4} K {'RESULT':6}  {'CHECK':{width}}  MESSAGE")
        for outcome, row in zip(report.outcomes, rows, strict=True):
            colour = style.get(outcome.status, self.style.ERROR)
            marker = " *" if outcome.is_failing_blocker else ""
            self.stdout.write(
                f"{row[0]:5} {row[1]:4} {row[2]} {colour(f'{row[3]:6}')}  "
                f"{row[4]:{width}}  {row[5]}{marker}"
            )
        counts = report.counts()
        summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
        self.stdout.write("")
        self.stdout.write(
            f"{len(report.outcomes)} checks: {summary}."
            + (f" Run #{report.run.pk} recorded." if report.run else "")
        )
        for change in report.changes:
            self.stdout.write(
                f"Changed since the last run: {change.probe.id} {change.previous} -> "
                f"{change.found.status}"
            )
        if failing:
            what = "failing blocker(s), marked *" if blockers_only else "check(s) to fix"
            self.stdout.write(
                self.style.ERROR(
                    f"{len(failing)} {what}: " + ", ".join(o.probe.id for o in failing)
                )
            )
        else:
            self.stdout.write(self.style.SUCCESS("No failing blocker."))
