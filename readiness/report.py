"""The exported checklist: every section and item with status, owner, evidence, sign-off and the
latest check results, as Markdown or HTML. Evidence in results is already masked."""

from __future__ import annotations

from django.template.loader import render_to_string

from .dashboard import report_context

FORMATS = {
    "md": ("readiness/report.md", "text/markdown; charset=utf-8"),
    "html": ("readiness/report.html", "text/html; charset=utf-8"),
}


def render_report(fmt: str = "md") -> tuple[str, str]:
    """The report as text and its content type; ``fmt`` is ``md`` or ``html``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")
    template, content_type = FORMATS[fmt]
    return render_to_string(template, report_context()), content_type
