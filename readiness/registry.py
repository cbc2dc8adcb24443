"""Automated checks ("probes") as small registered dataclasses, and what they return.

A probe proves one thing about the running project. Its ``func`` receives a ``ProbeContext`` and
returns a ``ProbeResult``; evidence in a result is already masked, never a secret. Probes of kind
``S`` read settings only (they also run as Django system checks), ``D`` reuse Django's own deploy
checks, ``P`` send in-process requests through the full middleware stack, and ``N`` go over the
network with a short timeout, and ``R`` read what is stored (past results, the migration ledger). The titles of the checklist items stay in ``catalogue.py``; a probe
names the item it proves with ``item``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

PASS = "pass"
WARN = "warn"
FAIL = "fail"
ERROR = "error"
WAIVED = "waived"
SKIP = "skip"
OUTCOMES = (PASS, WARN, FAIL, ERROR, WAIVED, SKIP)
#: Outcomes that count against the item (a waiver only counts once it is signed off).
BAD_OUTCOMES = frozenset({FAIL, ERROR, WAIVED})

BLOCKER = "blocker"
ADVISORY = "advisory"

SETTINGS = "S"
DEPLOY = "D"
REQUEST = "P"
NETWORK = "N"
RECORDS = "R"
KINDS = {
    SETTINGS: "settings",
    DEPLOY: "Django deploy check",
    REQUEST: "in-process request",
    NETWORK: "network probe",
    RECORDS: "stored records",
}

_ID_RE = re.compile(r"^readiness\.[EW]\d{3}$")


@dataclass(frozen=True)
class ProbeResult:
    """What a probe found. ``observed`` and ``evidence`` are masked before they get here."""

    status: str
    message: str
    observed: str = ""
    expected: str = ""
    hint: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in OUTCOMES:
            raise ValueError(f"unknown probe outcome {self.status!r}; use one of {OUTCOMES}")


def passed(message: str, **kwargs: Any) -> ProbeResult:
    return ProbeResult(PASS, message, **kwargs)


def warned(message: str, **kwargs: Any) -> ProbeResult:
    return ProbeResult(WARN, message, **kwargs)


def failed(message: str, **kwargs: Any) -> ProbeResult:
    return ProbeResult(FAIL, message, **kwargs)


def skipped(message: str, **kwargs: Any) -> ProbeResult:
    return ProbeResult(SKIP, message, **kwargs)


def _sentence(text: str) -> str:
    """Capitalise a plain first word ("the x" -> "The x", not "localhost" or "host.example")."""
    first = text.split(" ", 1)[0]
    if first.isalpha() and first.islower() and first not in ("localhost",):
        text = text[0].upper() + text[1:]
    return text if text.endswith(".") else text + "."


def worst(results: Iterable[ProbeResult], ok_message: str, **kwargs: Any) -> ProbeResult:
    """Fold several findings into one result: any failure fails, any warning warns."""
    results = list(results)
    hint = kwargs.pop("hint", "")
    for status in (FAIL, WARN):
        bad = [r for r in results if r.status == status]
        if bad:
            message = "; ".join(r.message for r in bad)
            return ProbeResult(
                status,
                _sentence(message),
                hint=next((r.hint for r in bad if r.hint), hint),
                **kwargs,
            )
    return passed(ok_message, **kwargs)


@dataclass
class ProbeContext:
    """What one run of probes shares: whether the network may be used, and cached work."""

    network: bool = True
    cache: dict[str, Any] = field(default_factory=dict)

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]


@dataclass(frozen=True)
class Probe:
    """One automated check: a stable id, the checklist item it proves, and the function."""

    id: str
    item: str
    title: str
    kind: str
    func: Callable[[ProbeContext], ProbeResult] = field(repr=False, compare=False)
    severity: str = BLOCKER
    #: Setting paths (``"SESSION_COOKIE_AGE"``, ``"SCALEKIT_AUTH.CLIENT_ID"``) the result depends on;
    #: their fingerprint tells when a sign-off of the item went stale.
    reads: tuple[str, ...] = ()
    #: True when the probe may leave the process (all ``N`` probes, and the ``P`` probes whose view
    #: builds the Scalekit client). ``--no-network`` skips them.
    uses_network: bool = False
    asvs: str = ""

    def __post_init__(self) -> None:
        if not _ID_RE.match(self.id):
            raise ValueError(
                f"probe id {self.id!r} must look like readiness.E001 or readiness.W001"
            )
        if self.kind not in KINDS:
            raise ValueError(f"probe {self.id}: kind {self.kind!r} is not one of {sorted(KINDS)}")
        if (self.severity == BLOCKER) != self.id.startswith("readiness.E"):
            raise ValueError(f"probe {self.id}: E ids are blockers, W ids are advisories")

    @property
    def is_blocker(self) -> bool:
        return self.severity == BLOCKER

    def run(self, ctx: ProbeContext) -> ProbeResult:
        return self.func(ctx)


_registry: dict[str, Probe] = {}


def register(probe_obj: Probe) -> Probe:
    """Add a probe to the registry; ids are unique."""
    existing = _registry.get(probe_obj.id)
    if existing is not None and existing.func is not probe_obj.func:
        raise ValueError(
            f"two probes share the id {probe_obj.id}: {existing.title!r}, {probe_obj.title!r}"
        )
    _registry[probe_obj.id] = probe_obj
    return probe_obj


def probe(
    id: str,
    *,
    item: str,
    title: str,
    kind: str,
    reads: tuple[str, ...] = (),
    uses_network: bool | None = None,
    asvs: str = "",
) -> Callable[[Callable[[ProbeContext], ProbeResult]], Callable[[ProbeContext], ProbeResult]]:
    """Register the decorated function as a probe; the function itself is returned unchanged."""

    def decorator(
        func: Callable[[ProbeContext], ProbeResult],
    ) -> Callable[[ProbeContext], ProbeResult]:
        register(
            Probe(
                id=id,
                item=item,
                title=title,
                kind=kind,
                func=func,
                severity=BLOCKER if id.startswith("readiness.E") else ADVISORY,
                reads=reads,
                uses_network=kind == NETWORK if uses_network is None else uses_network,
                asvs=asvs,
            )
        )
        return func

    return decorator


def all_probes() -> list[Probe]:
    """Every registered probe, ordered by id."""
    from . import probes  # noqa: F401  (importing the package registers the probes)

    return sorted(_registry.values(), key=lambda p: p.id)


def get_probe(probe_id: str) -> Probe:
    for p in all_probes():
        if p.id == probe_id:
            return p
    raise KeyError(f"no readiness probe with id {probe_id!r}")
