"""The buf.validate checker, on the SDK's real request messages and on a purpose-built probe."""

from __future__ import annotations

import pytest
from buf.validate import validate_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from scalekit.v1.commons import commons_pb2
from scalekit.v1.organizations import organizations_pb2
from scalekit.v1.roles import roles_pb2
from scalekit.v1.users import users_pb2

from scalekit_auth.emulator import services
from scalekit_auth.emulator.errors import FieldViolation
from scalekit_auth.emulator.validation import format_violations, unsupported_rules, validate

CreateOrganization = organizations_pb2.CreateOrganization
CreateOrganizationRequest = organizations_pb2.CreateOrganizationRequest


def pairs(message) -> list[tuple[str, str]]:
    return [(v.field, v.constraint) for v in validate(message)]


def user_request(**user) -> users_pb2.CreateUserAndMembershipRequest:
    user.setdefault("email", "ada@example.test")
    return users_pb2.CreateUserAndMembershipRequest(
        organization_id="org_1", user=users_pb2.CreateUser(**user)
    )


def test_a_complete_valid_request_has_no_violations():
    request = users_pb2.CreateUserAndMembershipRequest(
        organization_id="org_1",
        user=users_pb2.CreateUser(
            email="ada@example.test",
            external_id="legacy-1",
            metadata={"department": "R&D"},
            user_profile=users_pb2.CreateUserProfile(
                given_name="Ada", family_name="Lovelace", groups=["eng", "ops"]
            ),
            membership=users_pb2.CreateMembership(
                roles=[commons_pb2.Role(name="admin")], inviter_email="boss@example.test"
            ),
        ),
        send_invitation_email=False,
    )
    assert validate(request) == []


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            CreateOrganizationRequest(organization=CreateOrganization(display_name="")),
            [("organization.display_name", "string.min_len")],
        ),
        (
            CreateOrganizationRequest(organization=CreateOrganization(display_name="x" * 201)),
            [("organization.display_name", "string.max_len")],
        ),
        (
            CreateOrganizationRequest(
                organization=CreateOrganization(display_name="Acme", slug="Not_A_Label")
            ),
            [("organization.slug", "string.pattern")],
        ),
        (users_pb2.GetUserRequest(id="user_1"), [("id", "string.prefix")]),
        (
            users_pb2.UpdateUserRequest(id="usr_1", user=users_pb2.UpdateUser()),
            [("id", "string.min_len")],
        ),
        (user_request(email="not-an-email"), [("user.email", "string.email")]),
        (user_request(email=""), [("user.email", "string.email_empty")]),
        (
            roles_pb2.GetRoleRequest(role_name="admin", include="everything"),
            [("include", "string.in")],
        ),
        (
            roles_pb2.CreateRoleRequest(
                role=roles_pb2.CreateRole(name="bad-name", display_name="B")
            ),
            [("role.name", "string.pattern")],
        ),
        (
            roles_pb2.CreatePermissionRequest(permission=roles_pb2.CreatePermission(name="a b")),
            [("permission.name", "permission.name.format")],
        ),
        (
            users_pb2.ListOrganizationUsersRequest(organization_id="org_1", page_size=101),
            [("page_size", "uint32.gte_lte")],
        ),
        (roles_pb2.ListPermissionsRequest(page_size=0), [("page_size", "uint32.gte_lte")]),
        (roles_pb2.CreateRoleRequest(), [("role", "required")]),
        (
            roles_pb2.AddPermissionsToRoleRequest(role_name="viewer", permission_names=[]),
            [("permission_names", "required")],
        ),
    ],
    ids=lambda value: "" if isinstance(value, list) else type(value).__name__,
)
def test_each_rule_kind_on_the_scalekit_messages(message, expected):
    assert pairs(message) == expected


def test_required_failing_stops_the_other_rules_of_that_field():
    request = roles_pb2.CreateRoleRequest(role=roles_pb2.CreateRole(name="", display_name="X"))
    assert pairs(request) == [("role.name", "required")]


def test_map_rules_check_size_keys_and_values_with_entry_paths():
    too_many = {f"key{i}": "v" for i in range(11)}
    assert pairs(
        CreateOrganizationRequest(
            organization=CreateOrganization(display_name="A", metadata=too_many)
        )
    ) == [("organization.metadata", "map.max_pairs")]
    bad_entries = CreateOrganizationRequest(
        organization=CreateOrganization(display_name="A", metadata={"ab": "ok", "fine": ""})
    )
    violations = validate(bad_entries)
    assert violations == [
        FieldViolation(
            'organization.metadata["ab"]', "must be at least 3 characters", "string.min_len"
        ),
        FieldViolation(
            'organization.metadata["fine"]', "must be at least 1 characters", "string.min_len"
        ),
    ]


def test_repeated_rules_check_size_uniqueness_and_items():
    profile = users_pb2.CreateUserProfile(groups=[f"g{i}" for i in range(51)])
    assert pairs(user_request(user_profile=profile)) == [
        ("user.user_profile.groups", "repeated.max_items")
    ]
    profile = users_pb2.CreateUserProfile(groups=["eng", "eng", ""])
    assert pairs(user_request(user_profile=profile)) == [
        ("user.user_profile.groups", "repeated.unique"),
        ("user.user_profile.groups[2]", "string.min_len"),
    ]
    role = roles_pb2.CreateRole(
        name="viewer", display_name="Viewer", permissions=["ok:read", "no read"]
    )
    assert pairs(roles_pb2.CreateRoleRequest(role=role)) == [
        ("role.permissions[1]", "string.pattern")
    ]


def test_fields_with_presence_are_checked_only_when_set():
    # slug and logo_url are proto3 optional: absent is fine, present is checked.
    assert (
        validate(CreateOrganizationRequest(organization=CreateOrganization(display_name="A"))) == []
    )
    update = organizations_pb2.UpdateOrganizationRequest(
        id="org_1", organization=organizations_pb2.UpdateOrganization()
    )
    assert validate(update) == []
    update.organization.display_name = ""
    assert pairs(update) == [("organization.display_name", "string.min_len")]
    # A oneof member that is not set is not checked (the oneof itself is not required).
    assert validate(users_pb2.GetUserRequest()) == []
    # An unset optional page_size passes; explicitly set to 0 it breaks gte 1.
    assert validate(roles_pb2.ListPermissionsRequest()) == []


def test_every_violation_is_reported_with_a_readable_summary():
    request = user_request(
        email="",
        metadata={"ab": "x"},
        membership=users_pb2.CreateMembership(inviter_email="bad"),
    )
    assert pairs(request) == [
        ("user.email", "string.email_empty"),
        ("user.membership.inviter_email", "string.min_len"),
        ("user.membership.inviter_email", "string.email"),
        ('user.metadata["ab"]', "string.min_len"),
    ]
    summary = format_violations(validate(request))
    assert summary.startswith(
        "validation error: user.email: value is empty, which is not a valid email address "
        "[string.email_empty]; "
    )
    assert 'user.metadata["ab"]: must be at least 3 characters [string.min_len]' in summary


def served_request_types():
    classes = (services.OrganizationService, services.UserService, services.RolesService)
    modules = (organizations_pb2, users_pb2, roles_pb2)
    names = ("OrganizationService", "UserService", "RolesService")
    for servicer, module, name in zip(classes, modules, names, strict=True):
        methods = module.DESCRIPTOR.services_by_name[name].methods_by_name
        for method in servicer.__dict__:
            if method in methods:
                yield methods[method].input_type


def test_the_requests_the_emulator_serves_carry_no_rule_it_skips():
    request_types = list(served_request_types())
    assert len(request_types) >= 35
    assert {d.name: unsupported_rules(d) for d in request_types if unsupported_rules(d)} == {}


# --- generic rules, on a probe message built for the purpose ---------------------------------

Field = descriptor_pb2.FieldDescriptorProto


def _probe_classes():
    pool = descriptor_pool.Default()
    try:
        pool.FindMessageTypeByName("emulatortest.Probe")
    except KeyError:
        pool.Add(_probe_file())
    get = message_factory.GetMessageClass
    return tuple(
        get(pool.FindMessageTypeByName(f"emulatortest.{name}"))
        for name in ("Probe", "Outer", "Node")
    )


def _probe_file() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(
        name="tests/emulator/validation_probe.proto",
        package="emulatortest",
        syntax="proto3",
        dependency=["buf/validate/validate.proto"],
    )
    enum = file.enum_type.add(name="Level")
    enum.value.add(name="LEVEL_UNSPECIFIED", number=0)
    enum.value.add(name="LEVEL_HIGH", number=1)
    probe = file.message_type.add(name="Probe")
    probe.oneof_decl.add(name="choice").options.Extensions[validate_pb2.oneof].required = True

    def field(name, number, kind, **extra):
        added = probe.field.add(
            name=name, number=number, type=kind, label=Field.LABEL_OPTIONAL, **extra
        )
        return added, added.options.Extensions[validate_pb2.field]

    _, rules = field("code", 1, Field.TYPE_STRING)
    rules.string.len = 3
    _, rules = field("count", 2, Field.TYPE_INT32)
    rules.int32.gt, rules.int32.lt = 0, 10
    _, rules = field("outside", 3, Field.TYPE_INT32)
    rules.int32.gt, rules.int32.lt = 10, 5
    rules.ignore = validate_pb2.IGNORE_IF_ZERO_VALUE
    _, rules = field("level", 4, Field.TYPE_ENUM, type_name=".emulatortest.Level")
    rules.enum.defined_only = True
    _, rules = field("flag", 5, Field.TYPE_BOOL)
    rules.bool.const = True
    rules.ignore = validate_pb2.IGNORE_IF_ZERO_VALUE
    _, rules = field("quiet", 6, Field.TYPE_STRING)
    rules.string.min_len = 5
    rules.ignore = validate_pb2.IGNORE_IF_ZERO_VALUE
    _, rules = field("uuid", 7, Field.TYPE_STRING)
    rules.string.uuid = True
    rules.ignore = validate_pb2.IGNORE_IF_ZERO_VALUE
    _, rules = field("host", 8, Field.TYPE_STRING)
    rules.string.hostname = True
    rules.ignore = validate_pb2.IGNORE_IF_ZERO_VALUE
    _, rules = field("site", 9, Field.TYPE_STRING)
    rules.string.uri = True
    rules.ignore = validate_pb2.IGNORE_IF_ZERO_VALUE
    _, rules = field("blob", 10, Field.TYPE_BYTES)
    rules.bytes.min_len = 2
    _, rules = field("sized", 11, Field.TYPE_STRING)
    rules.cel.add(id="sized.long", message="too short", expression="this.size() > 2")
    field("a", 12, Field.TYPE_STRING, oneof_index=0)
    field("b", 13, Field.TYPE_STRING, oneof_index=0)
    _, rules = field("ids", 14, Field.TYPE_INT64)
    probe.field[-1].label = Field.LABEL_REPEATED
    rules.repeated.unique = True
    rules.repeated.items.int64.gte = 1
    outer = file.message_type.add(name="Outer")
    outer.options.Extensions[validate_pb2.message].cel.add(id="outer", expression="true")
    inner = outer.field.add(
        name="probe",
        number=1,
        type=Field.TYPE_MESSAGE,
        type_name=".emulatortest.Probe",
        label=Field.LABEL_OPTIONAL,
    )
    inner.options.Extensions[validate_pb2.field].required = True
    node = file.message_type.add(name="Node")
    label = node.field.add(
        name="label", number=1, type=Field.TYPE_STRING, label=Field.LABEL_OPTIONAL
    )
    label.options.Extensions[validate_pb2.field].string.min_len = 1
    node.field.add(
        name="child",
        number=2,
        type=Field.TYPE_MESSAGE,
        type_name=".emulatortest.Node",
        label=Field.LABEL_OPTIONAL,
    )
    return file


def test_generic_rules_follow_protovalidate_ids():
    Probe, _, _ = _probe_classes()
    ok = Probe(code="abc", count=5, level=1, a="x")
    assert validate(ok) == []
    bad = Probe(code="ab", count=10, outside=7, level=9, flag=False, quiet="abc", b="y")
    bad.ids.extend([3, 3, 0])
    assert pairs(bad) == [
        ("code", "string.len"),
        ("count", "int32.gt_lt"),
        ("outside", "int32.gt_lt_exclusive"),
        ("level", "enum.defined_only"),
        ("quiet", "string.min_len"),
        ("ids", "repeated.unique"),
        ("ids[2]", "int64.gte"),
    ]
    assert {v.field: v.description for v in validate(bad)}["count"] == (
        "must be greater than 0 and less than 10"
    )


def test_formats_and_required_oneof():
    Probe, _, _ = _probe_classes()
    assert pairs(Probe(code="abc", count=1, level=1)) == [("choice", "required")]
    formats = Probe(
        code="abc", count=1, level=1, a="x", uuid="nope", host="-bad-.example", site="no scheme"
    )
    assert pairs(formats) == [
        ("uuid", "string.uuid"),
        ("host", "string.hostname"),
        ("site", "string.uri"),
    ]
    good = Probe(
        code="abc",
        count=1,
        level=1,
        a="x",
        uuid="123e4567-e89b-12d3-a456-426614174000",
        host="login.example.com",
        site="https://example.com/a%20b",
    )
    assert validate(good) == []


def test_nested_required_message_and_unsupported_rules_are_reported():
    Probe, Outer, _ = _probe_classes()
    assert pairs(Outer()) == [("probe", "required")]
    assert pairs(Outer(probe=Probe(code="x", count=1, level=1, a="x"))) == [
        ("probe.code", "string.len")
    ]
    # Skipped at run time (a bytes rule, a CEL expression other than this.matches, a
    # message-level CEL rule), and reported so nobody mistakes the checker for complete.
    assert validate(Outer(probe=Probe(code="abc", count=1, level=1, a="x", blob=b"x"))) == []
    assert unsupported_rules(Outer.DESCRIPTOR) == [
        "Outer: message-level CEL",
        "Probe.blob: bytes.min_len",
        "Probe.sized: cel 'this.size() > 2'",
    ]


def test_recursive_messages_are_checked_at_every_depth():
    _, _, Node = _probe_classes()
    tree = Node(label="", child=Node(label="ok", child=Node(label="")))
    assert pairs(tree) == [("label", "string.min_len"), ("child.child.label", "string.min_len")]
