"""The settings probes (kind S) as Django system checks, shown by ``manage.py check --deploy``.

They are deployment checks: a development machine is allowed to fail them. Each failing or warning
probe becomes a ``Warning`` with the probe's own id (``readiness.E005``), so that a CI step
``manage.py check --deploy --fail-level WARNING`` stops an unsafe deploy, and a deliberate exception
can be silenced with ``SILENCED_SYSTEM_CHECKS`` (and then needs a signed-off waiver, item H05).
Network, request and record probes never run here: system checks stay offline and query-free.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Tags, Warning

from .registry import ERROR, FAIL, SETTINGS, WARN, ProbeContext, all_probes

TAG = Tags.security


def settings_probe_messages(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    from .runner import execute

    ctx = ProbeContext(network=False)
    messages: list[CheckMessage] = []
    for probe in all_probes():
        if probe.kind != SETTINGS:
            continue
        outcome = execute(probe, ctx)
        if outcome.status not in (FAIL, WARN, ERROR):
            continue
        severity = "blocker" if probe.is_blocker else "advisory"
        messages.append(
            Warning(
                f"[{probe.item} {severity}] {probe.title}: {outcome.result.message}",
                hint=outcome.result.hint or None,
                id=probe.id,
            )
        )
    return messages
