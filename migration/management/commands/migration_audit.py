from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from ...audit import audit
from ...reporting import EXIT_PROBLEMS, emit_json, table


class Command(BaseCommand):
    # Phase 1 runs before Scalekit is configured: the audit must not stop on scalekit_auth.E001.
    requires_system_checks: list[str] = []
    help = (
        "Phase 1: report this project's current authentication (user model, backends, middleware, "
        "sessions, password hashers, groups and permissions, auth/SSO apps), what matters for "
        "the import, and the SCALEKIT_AUTH role settings that keep every user's groups and "
        "staff/superuser flags after migration_import --from-database. Exit 1 when a finding "
        "blocks the import (e.g. users without email)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        report = audit()
        if options["json"]:
            emit_json(report.as_dict(), self.stdout)
        else:
            for name, rows in report.sections.items():
                self.stdout.write(f"\n{name}")
                self.stdout.write(table(["item", "value"], rows) if rows else "  (none)")
            self.stdout.write(
                "\nSCALEKIT_AUTH role settings (for migration_import --from-database)"
            )
            self.stdout.write(report.role_settings_text)
            self.stdout.write("\nfindings")
            if report.findings:
                self.stdout.write(table(["level", "finding"], report.findings))
            else:
                self.stdout.write("  nothing that blocks an import")
        if any(level == "error" for level, _ in report.findings):
            raise SystemExit(EXIT_PROBLEMS)
