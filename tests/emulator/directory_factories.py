"""factory-boy factories of the SDK's request messages, for the directory tests."""

from __future__ import annotations

import factory
from scalekit.v1.commons import commons_pb2
from scalekit.v1.organizations import organizations_pb2
from scalekit.v1.roles import roles_pb2
from scalekit.v1.users import users_pb2


class CreateOrganizationFactory(factory.Factory):
    class Meta:
        model = organizations_pb2.CreateOrganization

    display_name = factory.Sequence(lambda n: f"Organization {n}")
    external_id = factory.Sequence(lambda n: f"tenant-{n}")


class CreateUserProfileFactory(factory.Factory):
    class Meta:
        model = users_pb2.CreateUserProfile

    given_name = "Ada"
    family_name = factory.Sequence(lambda n: f"Lovelace{n}")


class CreateUserFactory(factory.Factory):
    class Meta:
        model = users_pb2.CreateUser

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    external_id = factory.Sequence(lambda n: f"legacy-{n}")
    user_profile = factory.SubFactory(CreateUserProfileFactory)


class CreatePermissionFactory(factory.Factory):
    class Meta:
        model = roles_pb2.CreatePermission

    name = factory.Sequence(lambda n: f"resource{n}:read")
    description = factory.LazyAttribute(lambda o: f"Can {o.name}")


class CreateRoleFactory(factory.Factory):
    class Meta:
        model = roles_pb2.CreateRole

    name = factory.Sequence(lambda n: f"role_{n}")
    display_name = factory.LazyAttribute(lambda o: o.name.replace("_", " ").title())


def membership(*role_names: str, **metadata: str) -> users_pb2.CreateMembership:
    """A ``CreateMembership`` naming roles (by name, as clients send them)."""
    return users_pb2.CreateMembership(
        roles=[commons_pb2.Role(name=name) for name in role_names], metadata=metadata
    )
