"""Check a protobuf request against the ``buf.validate`` rules in its own descriptors.

Scalekit validates requests with protovalidate before anything else, and the rules travel with the
SDK's generated descriptors (``field.GetOptions().Extensions[validate_pb2.field]``). This module
reads them, compiles one checker per message type (cached), and returns
:class:`~scalekit_auth.emulator.errors.FieldViolation` items whose field paths and constraint ids
follow protovalidate: ``user.metadata`` / ``map.max_pairs``,
``user.metadata["ab"]`` / ``string.min_len``, ``role.permissions[2]`` / ``string.pattern``.

Implemented, with protovalidate's presence semantics (a field with explicit presence is only
checked when set; an implicit-presence scalar is always checked unless ``ignore`` says otherwise;
``required`` failing stops the other rules of that field):

- ``required``; ``ignore`` (``IGNORE_IF_ZERO_VALUE``, ``IGNORE_ALWAYS``);
- nested messages (recursively), map keys and values, repeated items;
- string: ``const len min_len max_len len_bytes min_bytes max_bytes pattern prefix suffix
  contains not_contains in not_in`` and the formats ``email hostname ip ipv4 ipv6 uri address
  uuid tuuid ulid`` (``uri`` is an approximation of RFC 3986: a scheme and no forbidden
  characters);
- map: ``min_pairs max_pairs keys values``; repeated: ``min_items max_items unique items``;
- all integer and float kinds: ``const lt lte gt gte in not_in`` (with protovalidate's combined
  range ids such as ``uint32.gte_lte``); enum: ``const defined_only in not_in``; bool: ``const``;
- oneofs: ``(buf.validate.oneof).required`` and the message-level ``oneof`` rule;
- field-level CEL only in the one shape the Scalekit messages use, ``this.matches('<regex>')``.

Not implemented (skipped at run time, and reported by :func:`unsupported_rules` so nobody mistakes
this for a complete protovalidate): any other CEL expression (field or message level,
``cel_expression``), bytes, ``Any``, ``Duration``, ``Timestamp`` and ``FieldMask`` rules, float
``finite``, string ``uri_ref``, the ``*_prefix``/``*_with_prefixlen``, ``host_and_port``,
``protobuf_fqn`` and ``well_known_regex`` formats. ``tests/emulator/test_validation.py`` checks that
none of these occur in the requests the emulator serves.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

from buf.validate import validate_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from .errors import FieldViolation

__all__ = ["FieldViolation", "format_violations", "unsupported_rules", "validate"]

# A value check returns ``(constraint_id, description)`` when the value breaks the rule.
ValueCheck = Callable[[Any], "tuple[str, str] | None"]
# A field check appends violations for one field of ``msg``; ``prefix`` is the parent path + ".".
FieldCheck = Callable[[Message, str, list], None]

_IGNORE_IF_ZERO = validate_pb2.IGNORE_IF_ZERO_VALUE
_IGNORE_ALWAYS = validate_pb2.IGNORE_ALWAYS

_EMAIL_RE = re.compile(
    r"^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$"
)
_HOST_LABEL_RE = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
_URI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]*$")
_BAD_PERCENT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_TUUID_RE = re.compile(r"^[0-9a-fA-F]{32}$")
_ULID_RE = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")
_CEL_MATCHES_RE = re.compile(r"""^\s*this\.matches\(\s*(?P<q>['"])(?P<re>.*)(?P=q)\s*\)\s*$""")

_STRING_SUPPORTED = {
    "const", "len", "min_len", "max_len", "len_bytes", "min_bytes", "max_bytes", "pattern",
    "prefix", "suffix", "contains", "not_contains", "in", "not_in", "email", "hostname", "ip",
    "ipv4", "ipv6", "uri", "address", "uuid", "tuuid", "ulid", "example",
}  # fmt: skip
_NUMBER_SUPPORTED = {"const", "lt", "lte", "gt", "gte", "in", "not_in", "example"}
_ENUM_SUPPORTED = {"const", "defined_only", "in", "not_in", "example"}
_BOOL_SUPPORTED = {"const", "example"}
_NUMBER_KINDS = {
    "float", "double", "int32", "int64", "uint32", "uint64", "sint32", "sint64",
    "fixed32", "fixed64", "sfixed32", "sfixed64",
}  # fmt: skip
_WORDS = {
    "gt": "greater than",
    "gte": "greater than or equal to",
    "lt": "less than",
    "lte": "less than or equal to",
}


def validate(message: Message) -> list[FieldViolation]:
    """Every rule ``message`` breaks, in field order. Empty when the message is valid."""
    out: list[FieldViolation] = []
    _validator_for(message.DESCRIPTOR).check(message, "", out)
    return out


def format_violations(violations: Iterable[FieldViolation]) -> str:
    """One line naming every violation, e.g. ``validation error: user.email: value is empty,
    which is not a valid email address [string.email_empty]``."""
    parts = [f"{v.field}: {v.description} [{v.constraint}]" for v in violations]
    return "validation error: " + "; ".join(parts)


def unsupported_rules(descriptor: Descriptor) -> list[str]:
    """Rules present in ``descriptor`` (and the messages it contains) that :func:`validate`
    does not enforce, as ``"Message.field: rule"`` strings."""
    found: list[str] = []
    _walk_unsupported(descriptor, set(), found)
    return found


# --- compilation --------------------------------------------------------------------------------

# Published validators are complete and read without the lock. Those being compiled (a message
# and the messages it contains, possibly recursively) wait in _compiling, visible only to the
# compiling thread, and are published together once the outermost compilation ends.
_cache: dict[str, _MessageValidator] = {}
_compiling: dict[str, _MessageValidator] = {}
_cache_lock = threading.RLock()


def _validator_for(descriptor: Descriptor) -> _MessageValidator:
    name = descriptor.full_name
    validator = _cache.get(name)
    if validator is not None:
        return validator
    with _cache_lock:
        validator = _cache.get(name) or _compiling.get(name)
        if validator is not None:
            return validator
        outermost = not _compiling
        validator = _MessageValidator(descriptor)
        _compiling[name] = validator
        try:
            validator.compile()
            if outermost:
                _cache.update(_compiling)
        finally:
            if outermost:
                _compiling.clear()
        return validator


class _MessageValidator:
    """The compiled checks of one message type. Registered (in ``_compiling``) before its fields
    are compiled, so recursive message types terminate."""

    def __init__(self, descriptor: Descriptor) -> None:
        self.descriptor = descriptor
        self.checks: list[FieldCheck] = []
        self.compiled = False

    @property
    def empty(self) -> bool:
        return self.compiled and not self.checks

    def compile(self) -> None:
        for oneof in self.descriptor.oneofs:
            options = oneof.GetOptions()
            if (
                options.HasExtension(validate_pb2.oneof)
                and options.Extensions[validate_pb2.oneof].required
            ):
                self.checks.append(_oneof_required_check(oneof.name))
        message_options = self.descriptor.GetOptions()
        if message_options.HasExtension(validate_pb2.message):
            for rule in message_options.Extensions[validate_pb2.message].oneof:
                self.checks.append(_message_oneof_check(list(rule.fields), rule.required))
        for field in self.descriptor.fields:
            check = _compile_field(field)
            if check is not None:
                self.checks.append(check)
        self.compiled = True

    def check(self, message: Message, prefix: str, out: list) -> None:
        for check in self.checks:
            check(message, prefix, out)


def _field_rules(field: FieldDescriptor) -> validate_pb2.FieldRules | None:
    options = field.GetOptions()
    if options.HasExtension(validate_pb2.field):
        return options.Extensions[validate_pb2.field]
    return None


def _nested(field: FieldDescriptor) -> _MessageValidator | None:
    """The validator of a message-typed field, or None when that message has no rules at all."""
    if field.message_type is None or field.message_type.full_name.startswith("google.protobuf."):
        return None
    validator = _validator_for(field.message_type)
    return None if validator.empty else validator


def _required(path: str) -> FieldViolation:
    return FieldViolation(path, "value is required", "required")


def _compile_field(field: FieldDescriptor) -> FieldCheck | None:
    rules = _field_rules(field)
    if rules is not None and rules.ignore == _IGNORE_ALWAYS:
        return None
    required = bool(rules and rules.required)
    ignore_zero = bool(rules and rules.ignore == _IGNORE_IF_ZERO)
    name = field.name

    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        return _compile_map(field, rules, required, ignore_zero)
    if field.is_repeated:
        return _compile_repeated(field, rules, required, ignore_zero)
    if field.message_type is not None:
        nested = _nested(field)
        if nested is None and not required:
            return None

        def check_message(msg: Message, prefix: str, out: list) -> None:
            if not msg.HasField(name):
                if required:
                    out.append(_required(prefix + name))
                return
            if nested is not None:
                nested.check(getattr(msg, name), prefix + name + ".", out)

        return check_message

    value_checks = _value_checks(field, rules) if rules is not None else []
    if not value_checks and not required:
        return None
    has_presence = field.has_presence
    zero = field.default_value

    def check_scalar(msg: Message, prefix: str, out: list) -> None:
        if has_presence:
            if not msg.HasField(name):
                if required:
                    out.append(_required(prefix + name))
                return
            value = getattr(msg, name)
        else:
            value = getattr(msg, name)
            if value == zero:
                if required:
                    out.append(_required(prefix + name))
                    return
                if ignore_zero:
                    return
        for value_check in value_checks:
            failure = value_check(value)
            if failure is not None:
                out.append(FieldViolation(prefix + name, failure[1], failure[0]))

    return check_scalar


def _compile_map(
    field: FieldDescriptor, rules: validate_pb2.FieldRules | None, required: bool, ignore_zero: bool
) -> FieldCheck | None:
    name = field.name
    key_field = field.message_type.fields_by_name["key"]
    value_field = field.message_type.fields_by_name["value"]
    map_rules = rules.map if rules is not None and rules.HasField("map") else None
    min_pairs = map_rules.min_pairs if map_rules and map_rules.HasField("min_pairs") else None
    max_pairs = map_rules.max_pairs if map_rules and map_rules.HasField("max_pairs") else None
    key_checks = (
        _value_checks(key_field, map_rules.keys) if map_rules and map_rules.HasField("keys") else []
    )
    value_checks = (
        _value_checks(value_field, map_rules.values)
        if map_rules and map_rules.HasField("values") and value_field.message_type is None
        else []
    )
    value_nested = _nested(value_field) if value_field.message_type is not None else None
    has_size_rules = required or min_pairs is not None or max_pairs is not None
    if not (has_size_rules or key_checks or value_checks or value_nested):
        return None

    def check_map(msg: Message, prefix: str, out: list) -> None:
        entries = getattr(msg, name)
        size = len(entries)
        path = prefix + name
        if size == 0:
            if required:
                out.append(_required(path))
                return
            if ignore_zero:
                return
        if min_pairs is not None and size < min_pairs:
            out.append(
                FieldViolation(path, f"map must be at least {min_pairs} entries", "map.min_pairs")
            )
        if max_pairs is not None and size > max_pairs:
            out.append(
                FieldViolation(path, f"map must be at most {max_pairs} entries", "map.max_pairs")
            )
        if not (key_checks or value_checks or value_nested):
            return
        for key in sorted(entries):
            value = entries[key]
            entry_path = f"{path}[{_format_key(key)}]"
            for key_check in key_checks:
                failure = key_check(key)
                if failure is not None:
                    out.append(FieldViolation(entry_path, failure[1], failure[0]))
            for value_check in value_checks:
                failure = value_check(value)
                if failure is not None:
                    out.append(FieldViolation(entry_path, failure[1], failure[0]))
            if value_nested is not None:
                value_nested.check(value, entry_path + ".", out)

    return check_map


def _compile_repeated(
    field: FieldDescriptor, rules: validate_pb2.FieldRules | None, required: bool, ignore_zero: bool
) -> FieldCheck | None:
    name = field.name
    repeated = rules.repeated if rules is not None and rules.HasField("repeated") else None
    min_items = repeated.min_items if repeated and repeated.HasField("min_items") else None
    max_items = repeated.max_items if repeated and repeated.HasField("max_items") else None
    unique = bool(repeated and repeated.unique)
    item_checks = (
        _value_checks(field, repeated.items)
        if repeated and repeated.HasField("items") and field.message_type is None
        else []
    )
    item_nested = _nested(field) if field.message_type is not None else None
    has_size_rules = required or unique or min_items is not None or max_items is not None
    if not (has_size_rules or item_checks or item_nested):
        return None

    def check_repeated(msg: Message, prefix: str, out: list) -> None:
        items = getattr(msg, name)
        size = len(items)
        path = prefix + name
        if size == 0:
            if required:
                out.append(_required(path))
                return
            if ignore_zero:
                return
        if min_items is not None and size < min_items:
            out.append(
                FieldViolation(
                    path, f"must contain at least {min_items} item(s)", "repeated.min_items"
                )
            )
        if max_items is not None and size > max_items:
            out.append(
                FieldViolation(
                    path, f"must contain no more than {max_items} item(s)", "repeated.max_items"
                )
            )
        if unique and len(set(items)) != size:
            out.append(
                FieldViolation(path, "repeated value must contain unique items", "repeated.unique")
            )
        if item_checks:
            for index, item in enumerate(items):
                for item_check in item_checks:
                    failure = item_check(item)
                    if failure is not None:
                        out.append(FieldViolation(f"{path}[{index}]", failure[1], failure[0]))
        elif item_nested is not None:
            for index, item in enumerate(items):
                item_nested.check(item, f"{path}[{index}].", out)

    return check_repeated


def _format_key(key: Any) -> str:
    if isinstance(key, str):
        return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def _oneof_required_check(oneof_name: str) -> FieldCheck:
    def check(msg: Message, prefix: str, out: list) -> None:
        if msg.WhichOneof(oneof_name) is None:
            out.append(
                FieldViolation(
                    prefix + oneof_name, "exactly one field is required in oneof", "required"
                )
            )

    return check


def _message_oneof_check(fields: list[str], required: bool) -> FieldCheck:
    def check(msg: Message, prefix: str, out: list) -> None:
        present = [name for name in fields if _is_populated(msg, name)]
        if len(present) > 1:
            out.append(
                FieldViolation(
                    prefix.rstrip("."),
                    f"only one of {', '.join(fields)} can be set",
                    "message.oneof",
                )
            )
        elif required and not present:
            out.append(
                FieldViolation(
                    prefix.rstrip("."), f"one of {', '.join(fields)} must be set", "message.oneof"
                )
            )

    return check


def _is_populated(msg: Message, name: str) -> bool:
    field = msg.DESCRIPTOR.fields_by_name[name]
    if field.is_repeated:
        return len(getattr(msg, name)) > 0
    if field.has_presence:
        return msg.HasField(name)
    return getattr(msg, name) != field.default_value


# --- value rules --------------------------------------------------------------------------------


def _value_checks(field: FieldDescriptor, rules: validate_pb2.FieldRules) -> list[ValueCheck]:
    checks: list[ValueCheck] = []
    kind = rules.WhichOneof("type")
    if kind == "string":
        checks.extend(_string_checks(rules.string))
    elif kind in _NUMBER_KINDS:
        checks.extend(_number_checks(kind, getattr(rules, kind)))
    elif kind == "enum":
        checks.extend(_enum_checks(rules.enum, field))
    elif kind == "bool" and rules.bool.HasField("const"):
        expected = rules.bool.const
        checks.append(
            lambda v: (
                None if v == expected else ("bool.const", f"must equal {str(expected).lower()}")
            )
        )
    for rule in rules.cel:
        match = _CEL_MATCHES_RE.match(rule.expression)
        if match is None:
            continue
        pattern = re.compile(match.group("re").replace("\\\\", "\\"))
        rule_id = rule.id or "cel"
        message = rule.message or f"does not match regex pattern `{pattern.pattern}`"
        checks.append(_cel_matches_check(pattern, rule_id, message))
    return checks


def _cel_matches_check(pattern: re.Pattern, rule_id: str, message: str) -> ValueCheck:
    return lambda v: None if pattern.search(v) else (rule_id, message)


def _string_checks(rules: validate_pb2.StringRules) -> list[ValueCheck]:  # noqa: C901
    checks: list[ValueCheck] = []
    has = rules.HasField

    def add(test: Callable[[str], bool], rule_id: str, description: str) -> None:
        checks.append(lambda v: None if test(v) else (rule_id, description))

    if has("const"):
        const = rules.const
        add(lambda v: v == const, "string.const", f"must equal `{const}`")
    if has("len"):
        length = rules.len
        add(lambda v: len(v) == length, "string.len", f"must be {length} characters")
    if has("min_len"):
        min_len = rules.min_len
        add(lambda v: len(v) >= min_len, "string.min_len", f"must be at least {min_len} characters")
    if has("max_len"):
        max_len = rules.max_len
        add(lambda v: len(v) <= max_len, "string.max_len", f"must be at most {max_len} characters")
    if has("len_bytes"):
        n = rules.len_bytes
        add(lambda v: len(v.encode()) == n, "string.len_bytes", f"must be {n} bytes")
    if has("min_bytes"):
        n_min = rules.min_bytes
        add(
            lambda v: len(v.encode()) >= n_min,
            "string.min_bytes",
            f"must be at least {n_min} bytes",
        )
    if has("max_bytes"):
        n_max = rules.max_bytes
        add(
            lambda v: len(v.encode()) <= n_max, "string.max_bytes", f"must be at most {n_max} bytes"
        )
    if has("pattern"):
        regex = re.compile(rules.pattern)
        add(
            lambda v: regex.search(v) is not None,
            "string.pattern",
            f"does not match regex pattern `{rules.pattern}`",
        )
    if has("prefix"):
        prefix = rules.prefix
        add(lambda v: v.startswith(prefix), "string.prefix", f"does not have prefix `{prefix}`")
    if has("suffix"):
        suffix = rules.suffix
        add(lambda v: v.endswith(suffix), "string.suffix", f"does not have suffix `{suffix}`")
    if has("contains"):
        needle = rules.contains
        add(lambda v: needle in v, "string.contains", f"does not contain substring `{needle}`")
    if has("not_contains"):
        banned = rules.not_contains
        add(lambda v: banned not in v, "string.not_contains", f"contains substring `{banned}`")
    allowed = list(getattr(rules, "in"))
    if allowed:
        allowed_set = frozenset(allowed)
        add(lambda v: v in allowed_set, "string.in", f"must be in list {_format_list(allowed)}")
    denied = list(rules.not_in)
    if denied:
        denied_set = frozenset(denied)
        add(
            lambda v: v not in denied_set,
            "string.not_in",
            f"must not be in list {_format_list(denied)}",
        )
    well_known = rules.WhichOneof("well_known")
    format_check = _FORMATS.get(well_known or "")
    if format_check is not None and getattr(rules, well_known):
        test, description, what = format_check
        checks.append(_format_check(well_known, test, description, what))
    return checks


def _format_check(
    name: str, test: Callable[[str], bool], description: str, what: str
) -> ValueCheck:
    empty_id = f"string.{name}_empty"
    empty_description = f"value is empty, which is not a valid {what}"
    rule_id = f"string.{name}"

    def check(value: str) -> tuple[str, str] | None:
        if value == "":
            return (empty_id, empty_description)
        return None if test(value) else (rule_id, description)

    return check


def _is_hostname(value: str) -> bool:
    host = value[:-1] if value.endswith(".") else value
    if not host or len(host) > 253:
        return False
    labels = host.split(".")
    if not all(_HOST_LABEL_RE.match(label) for label in labels):
        return False
    return not labels[-1].isdigit()


def _is_ip(version: int | None) -> Callable[[str], bool]:
    def test(value: str) -> bool:
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            return False
        return version is None or address.version == version

    return test


def _is_uri(value: str) -> bool:
    return bool(_URI_RE.match(value)) and not _BAD_PERCENT_RE.search(value)


_FORMATS: dict[str, tuple[Callable[[str], bool], str, str]] = {
    "email": (lambda v: bool(_EMAIL_RE.match(v)), "must be a valid email address", "email address"),
    "hostname": (_is_hostname, "must be a valid hostname", "hostname"),
    "ip": (_is_ip(None), "must be a valid IP address", "IP address"),
    "ipv4": (_is_ip(4), "must be a valid IPv4 address", "IPv4 address"),
    "ipv6": (_is_ip(6), "must be a valid IPv6 address", "IPv6 address"),
    "uri": (_is_uri, "must be a valid URI", "URI"),
    "address": (
        lambda v: _is_hostname(v) or _is_ip(None)(v),
        "must be a valid hostname, or ip address",
        "IP address or hostname",
    ),
    "uuid": (lambda v: bool(_UUID_RE.match(v)), "must be a valid UUID", "UUID"),
    "tuuid": (lambda v: bool(_TUUID_RE.match(v)), "must be a valid trimmed UUID", "trimmed UUID"),
    "ulid": (lambda v: bool(_ULID_RE.match(v)), "must be a valid ULID", "ULID"),
}


def _format_list(values: list) -> str:
    return "[" + ", ".join(str(v) for v in values) + "]"


def _number_checks(kind: str, rules: Message) -> list[ValueCheck]:
    checks: list[ValueCheck] = []
    has = rules.HasField
    if has("const"):
        const = rules.const
        checks.append(lambda v: None if v == const else (f"{kind}.const", f"must equal {const}"))
    lower = next((op for op in ("gt", "gte") if has(op)), None)
    upper = next((op for op in ("lt", "lte") if has(op)), None)
    if lower or upper:
        checks.append(_range_check(kind, lower, getattr(rules, lower) if lower else None,
                                   upper, getattr(rules, upper) if upper else None))  # fmt: skip
    allowed = list(getattr(rules, "in"))
    if allowed:
        allowed_set = frozenset(allowed)
        description = f"must be in list {_format_list(allowed)}"
        checks.append(lambda v: None if v in allowed_set else (f"{kind}.in", description))
    denied = list(rules.not_in)
    if denied:
        denied_set = frozenset(denied)
        description = f"must not be in list {_format_list(denied)}"
        checks.append(lambda v: None if v not in denied_set else (f"{kind}.not_in", description))
    return checks


def _range_check(
    kind: str, lower: str | None, low: Any, upper: str | None, high: Any
) -> ValueCheck:
    def above(v: Any) -> bool:
        return v > low if lower == "gt" else v >= low

    def below(v: Any) -> bool:
        return v < high if upper == "lt" else v <= high

    if lower and upper:
        if high >= low:
            rule_id = f"{kind}.{lower}_{upper}"
            description = f"must be {_WORDS[lower]} {low} and {_WORDS[upper]} {high}"
            return lambda v: None if above(v) and below(v) else (rule_id, description)
        rule_id = f"{kind}.{lower}_{upper}_exclusive"
        description = f"must be {_WORDS[lower]} {low} or {_WORDS[upper]} {high}"
        return lambda v: None if above(v) or below(v) else (rule_id, description)
    if lower:
        description = f"must be {_WORDS[lower]} {low}"
        return lambda v: None if above(v) else (f"{kind}.{lower}", description)
    description = f"must be {_WORDS[upper]} {high}"
    return lambda v: None if below(v) else (f"{kind}.{upper}", description)


def _enum_checks(rules: validate_pb2.EnumRules, field: FieldDescriptor) -> list[ValueCheck]:
    checks: list[ValueCheck] = []
    if rules.HasField("const"):
        const = rules.const
        checks.append(lambda v: None if v == const else ("enum.const", f"must equal {const}"))
    if rules.defined_only and field.enum_type is not None:
        defined = frozenset(value.number for value in field.enum_type.values)
        checks.append(
            lambda v: (
                None
                if v in defined
                else ("enum.defined_only", "value must be one of the defined enum values")
            )
        )
    allowed = list(getattr(rules, "in"))
    if allowed:
        allowed_set = frozenset(allowed)
        description = f"must be in list {_format_list(allowed)}"
        checks.append(lambda v: None if v in allowed_set else ("enum.in", description))
    denied = list(rules.not_in)
    if denied:
        denied_set = frozenset(denied)
        description = f"must not be in list {_format_list(denied)}"
        checks.append(lambda v: None if v not in denied_set else ("enum.not_in", description))
    return checks


# --- coverage report ----------------------------------------------------------------------------


def _walk_unsupported(descriptor: Descriptor, seen: set[str], found: list[str]) -> None:
    if descriptor.full_name in seen:
        return
    seen.add(descriptor.full_name)
    message_options = descriptor.GetOptions()
    if message_options.HasExtension(validate_pb2.message):
        message_rules = message_options.Extensions[validate_pb2.message]
        if message_rules.cel or message_rules.cel_expression:
            found.append(f"{descriptor.name}: message-level CEL")
    for field in descriptor.fields:
        rules = _field_rules(field)
        if rules is not None:
            found.extend(f"{descriptor.name}.{field.name}: {r}" for r in _unsupported_in(rules))
        if field.message_type is not None and not field.message_type.full_name.startswith(
            "google.protobuf."
        ):
            _walk_unsupported(field.message_type, seen, found)


def _unsupported_in(rules: validate_pb2.FieldRules) -> list[str]:
    found: list[str] = []
    if rules.cel_expression:
        found.append("cel_expression")
    found.extend(
        f"cel {rule.expression!r}"
        for rule in rules.cel
        if not _CEL_MATCHES_RE.match(rule.expression)
    )
    kind = rules.WhichOneof("type")
    if kind is None:
        return found
    typed = getattr(rules, kind)
    if kind == "map":
        for part in ("keys", "values"):
            if typed.HasField(part):
                found.extend(f"map.{part}.{r}" for r in _unsupported_in(getattr(typed, part)))
        return found
    if kind == "repeated":
        if typed.HasField("items"):
            found.extend(f"repeated.items.{r}" for r in _unsupported_in(typed.items))
        return found
    supported = {
        "string": _STRING_SUPPORTED,
        "enum": _ENUM_SUPPORTED,
        "bool": _BOOL_SUPPORTED,
    }.get(kind, _NUMBER_SUPPORTED if kind in _NUMBER_KINDS else set())
    for field, _value in typed.ListFields():
        if field.name not in supported:
            found.append(f"{kind}.{field.name}")
    return found
