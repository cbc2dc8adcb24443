from __future__ import annotations

import pytest

from readiness.models import ChecklistItem

from .factories import StaffFactory, SuperuserFactory, UserFactory

SIGNER_PERMS = [
    "readiness.sign_off_item",
    "readiness.run_checks",
    "readiness.mark_not_applicable",
    "readiness.view_checklistitem",
    "readiness.change_checklistitem",
]


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def signer(db):
    """A staff member allowed to sign off, run checks and mark items not applicable."""
    return StaffFactory(
        username="signer", first_name="Grace", last_name="Hopper", perms=SIGNER_PERMS
    )


@pytest.fixture
def viewer(db):
    """Staff who may look at the checklist but not sign off or run checks."""
    return StaffFactory(username="viewer", perms=["readiness.view_checklistitem"])


@pytest.fixture
def superuser(db):
    return SuperuserFactory(username="root")


@pytest.fixture
def item(db):
    def get(key: str) -> ChecklistItem:
        return ChecklistItem.objects.select_related("section").get(key=key)

    return get
