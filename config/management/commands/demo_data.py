"""``manage.py demo_data``: sample data for ``make demo``. Idempotent; safe to run again.

Creates the Django superuser ``admin`` (password written to ``var/demo-admin-password.txt``)
and, in the Scalekit environment (the emulator), two organizations with a few members, so that
the hosted login has someone to log in as.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from scalekit.common.exceptions import ScalekitNotFoundException
from scalekit.v1.commons import commons_pb2
from scalekit.v1.organizations import organizations_pb2
from scalekit.v1.users import users_pb2

from scalekit_auth.client import get_client

ORGANIZATIONS = {
    "acme": (
        "Acme Corp",
        [
            ("ada@acme.example", "Ada", "Lovelace", "admin"),
            ("grace@acme.example", "Grace", "Hopper", "member"),
        ],
    ),
    "globex": ("Globex", [("alan@globex.example", "Alan", "Turing", "admin")]),
}


class Command(BaseCommand):
    help = (
        "Create the demo's sample data (a Django superuser; organizations and users in Scalekit)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        self._superuser()
        client = get_client()
        for external_id, (name, members) in ORGANIZATIONS.items():
            try:
                org = client.organization.get_organization_by_external_id(external_id)[
                    0
                ].organization
            except ScalekitNotFoundException:
                org = client.organization.create_organization(
                    organizations_pb2.CreateOrganization(display_name=name, external_id=external_id)
                )[0].organization
            for email, given, family, role in members:
                try:
                    client.users.get_user_by_external_id(email)
                    continue
                except ScalekitNotFoundException:
                    pass
                client.users.create_user_and_membership(
                    org.id,
                    users_pb2.CreateUser(
                        email=email,
                        external_id=email,
                        user_profile=users_pb2.CreateUserProfile(
                            given_name=given, family_name=family
                        ),
                        membership=users_pb2.CreateMembership(roles=[commons_pb2.Role(name=role)]),
                    ),
                    send_invitation_email=False,
                )
        emails = ", ".join(m[0] for _, members in ORGANIZATIONS.values() for m in members)
        self.stdout.write(f"demo: Scalekit users you can log in as: {emails}")

    def _superuser(self) -> None:
        path = Path(settings.BASE_DIR) / "var" / "demo-admin-password.txt"
        User = get_user_model()  # noqa: N806
        if User.objects.filter(username="admin").exists() and path.exists():
            return
        password = secrets.token_urlsafe(12)
        user, _ = User.objects.get_or_create(
            username="admin", defaults={"email": "admin@localhost"}
        )
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(password + "\n")
        path.chmod(0o600)
