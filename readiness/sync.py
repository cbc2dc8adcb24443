"""Load the catalogue into the database, or bring the database up to a changed catalogue.

Only definitions are written (titles, order, guidance, kind, severity...). Owners, evidence,
statuses, sign-offs and history are never touched; an item that left the catalogue is *retired*,
not deleted, so its sign-offs and history stay. The function takes the model classes so that the
data migration can pass its historical models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import catalogue

ITEM_FIELDS = (
    "title",
    "guidance",
    "kind",
    "severity",
    "asvs",
    "signer_role",
    "evidence_hint",
    "reattest",
    "watches",
)


@dataclass
class SyncReport:
    sections_created: list[str] = field(default_factory=list)
    sections_updated: list[str] = field(default_factory=list)
    sections_retired: list[str] = field(default_factory=list)
    items_created: list[str] = field(default_factory=list)
    items_updated: dict[str, list[str]] = field(default_factory=dict)
    items_retired: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(vars(self).values())

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def _item_values(item: catalogue.ItemDef) -> dict[str, Any]:
    values = {name: getattr(item, name) for name in ITEM_FIELDS}
    values["watches"] = list(item.watches)
    return values


def sync_catalogue(
    section_model: Any,
    item_model: Any,
    event_model: Any,
    sections: tuple[catalogue.SectionDef, ...] = catalogue.SECTIONS,
) -> SyncReport:
    report = SyncReport()
    order_in_checklist: dict[str, int] = {}
    known_sections, known_items = set(), set()
    for definition in sections:
        order_in_checklist[definition.checklist] = (
            order_in_checklist.get(definition.checklist, 0) + 1
        )
        values = {
            "title": definition.title,
            "checklist": definition.checklist,
            "description": definition.description,
            "order": order_in_checklist[definition.checklist],
            "retired": False,
        }
        section, created = section_model.objects.get_or_create(key=definition.key, defaults=values)
        known_sections.add(definition.key)
        if created:
            report.sections_created.append(definition.key)
        elif any(getattr(section, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(section, k, v)
            section.save()
            report.sections_updated.append(definition.key)
        for position, item_def in enumerate(definition.items, start=1):
            known_items.add(item_def.key)
            values = {
                **_item_values(item_def),
                "section_id": section.pk,
                "order": position,
                "retired": False,
            }
            item = item_model.objects.filter(key=item_def.key).first()
            if item is None:
                item = item_model.objects.create(key=item_def.key, **values)
                event_model.objects.create(
                    item_id=item.pk,
                    action="created",
                    actor_name="catalogue",
                    to_status=item.status,
                    message="Added to the checklist",
                )
                report.items_created.append(item_def.key)
                continue
            changed = [k for k, v in values.items() if getattr(item, k) != v]
            if changed:
                for k in changed:
                    setattr(item, k, values[k])
                item.save(update_fields=[*changed, "updated_at"])
                event_model.objects.create(
                    item_id=item.pk,
                    action="catalogue",
                    actor_name="catalogue",
                    from_status=item.status,
                    to_status=item.status,
                    message="Catalogue changed: "
                    + ", ".join(c.removesuffix("_id") for c in changed),
                )
                report.items_updated[item_def.key] = changed
    for section in section_model.objects.exclude(key__in=known_sections).filter(retired=False):
        section.retired = True
        section.save(update_fields=["retired"])
        report.sections_retired.append(section.key)
    for item in item_model.objects.exclude(key__in=known_items).filter(retired=False):
        item.retired = True
        item.save(update_fields=["retired", "updated_at"])
        event_model.objects.create(
            item_id=item.pk,
            action="retired",
            actor_name="catalogue",
            from_status=item.status,
            to_status=item.status,
            message="Removed from the catalogue; sign-offs and history kept",
        )
        report.items_retired.append(item.key)
    return report


def sync() -> SyncReport:
    """Sync with the live models, then refresh the status of every item that changed."""
    from .models import ChecklistItem, ItemEvent, Section
    from .status import refresh_item

    report = sync_catalogue(Section, ChecklistItem, ItemEvent)
    for key in [*report.items_updated, *report.items_retired]:
        refresh_item(
            ChecklistItem.objects.select_related("section").get(key=key), reason="catalogue changed"
        )
    return report
