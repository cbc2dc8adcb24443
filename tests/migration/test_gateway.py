from __future__ import annotations

import pytest
from scalekit.common.exceptions import ScalekitTooManyRequestsException
from scalekit.v1.organizations import organizations_pb2

from migration.gateway import (
    AlreadyExists,
    Gateway,
    NotFound,
    Permanent,
    Transient,
    classify,
    retry_after_seconds,
)
from migration.ratelimit import LocalTokenBucket


def test_retry_after_comes_from_the_grpc_trailer(sdk, emulator):
    emulator.control.set_faults(rate_limit_rps=0.5, rate_limit_burst=1)
    sdk.roles.list_roles()
    with pytest.raises(ScalekitTooManyRequestsException) as exc:
        sdk.roles.list_roles()
    assert retry_after_seconds(exc.value) == 2.0
    assert isinstance(classify(exc.value), Transient)


def test_gateway_pauses_on_rate_limit_and_then_succeeds(sdk, emulator):
    emulator.control.set_faults(rate_limit_rps=2, rate_limit_burst=1)
    limiter = LocalTokenBucket(rate=100, burst=5)
    gateway = Gateway(sdk, limiter, default_pause=5)
    gateway.list_roles()
    roles = gateway.list_roles()  # refused once, paused for the trailer's 1 s, then served
    assert {r.name for r in roles} >= {"admin", "member"}
    assert limiter.pauses() == 1
    assert gateway.stats.snapshot()["rate_limited"] == 1


def test_errors_are_classified(sdk, emulator):
    gateway = Gateway(sdk, LocalTokenBucket(rate=100))
    org = organizations_pb2.CreateOrganization(display_name="Acme", external_id="acme")
    sdk.organization.create_organization(org)
    with pytest.raises(AlreadyExists):  # INVALID_ARGUMENT "duplicate ..." (the default)
        gateway.create_organization({"display_name": "Acme", "external_id": "acme"})
    emulator.control.set_duplicate_status(organization_external_id="ALREADY_EXISTS")
    with pytest.raises(AlreadyExists):
        gateway.create_organization({"display_name": "Acme", "external_id": "acme"})
    with pytest.raises(NotFound):
        gateway.get_user("usr_1234567890123456789")
    assert gateway.find_organization("nope") is None
    with pytest.raises(Permanent) as exc:
        gateway.create_organization({"display_name": "", "external_id": "x"})
    assert exc.value.code == "bad_request" and exc.value.message.startswith("INVALID_ARGUMENT")


def test_users_are_found_by_email_through_one_listing_rebuilt_only_when_stale(sdk, emulator):
    from scalekit.v1.users import users_pb2

    from migration.gateway import UserEmailIndex

    acme = sdk.organization.create_organization(
        organizations_pb2.CreateOrganization(display_name="Acme", external_id="acme")
    )[0].organization

    def create(email: str) -> str:
        user = users_pb2.CreateUser(email=email)
        return sdk.users.create_user_and_membership(acme.id, user, send_invitation_email=False)[
            0
        ].user.id

    first = create("First@Example.com")
    index = UserEmailIndex()
    gateway = Gateway(sdk, LocalTokenBucket(rate=1000, burst=50), email_index=index)
    emulator.control.reset_counters()
    assert gateway.find_user_by_email("first@example.com").id == first
    assert gateway.find_user_by_email("nobody@example.com") is None  # no rebuild for a miss
    assert index.builds == 1

    later = create("later@example.com")  # created elsewhere after the index was built
    assert gateway.find_user_by_email("later@example.com") is None
    # Scalekit refused it as a duplicate: the stale index is rebuilt once, then it is found.
    assert gateway.find_user_by_email("later@example.com", expected=True).id == later
    assert index.builds == 2
    created = gateway.create_user(acme.id, {"email": "mine@example.com"}, [], invite=False)
    assert gateway.find_user_by_email("MINE@example.com").id == created.id  # kept current
    calls = emulator.control.counters()["calls"]
    assert calls["ListUsers"] == 2 and "ListOrganizationUsers" not in calls
