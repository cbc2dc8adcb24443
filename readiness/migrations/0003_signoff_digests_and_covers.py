"""Sign-offs keep one digest per setting and what they vouched for; sections keep a snapshot when
marked not applicable; check results protect their run.

Existing sign-offs are converted once: one still matching its item's settings (the old whole-set
fingerprint) gets the digests of today's values; one that no longer matched was already stale and
stays so. A hybrid sign-off covers the failures its item shows today, the waiver item (H05) the
SILENCED_SYSTEM_CHECKS of today: from now on only new failures or new waivers surface.
"""

import hashlib
import json

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

STALE = "stale-before-0003"


def _legacy_fingerprint(paths):
    from readiness.fingerprints import read_setting

    if not paths:
        return ""
    payload = json.dumps({path: read_setting(path) for path in paths}, sort_keys=True, default=repr)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def convert_signoffs(apps, schema_editor):
    from readiness.catalogue import SILENCED_CHECKS_WAIVER
    from readiness.fingerprints import setting_digests
    from readiness.registry import all_probes
    from readiness.status import failure_keys

    SignOff = apps.get_model("readiness", "SignOff")
    CheckResult = apps.get_model("readiness", "CheckResult")
    reads, probe_ids = {}, {}
    for probe in all_probes():
        reads.setdefault(probe.item, []).extend(probe.reads)
        probe_ids.setdefault(probe.item, set()).add(probe.id)
    for signoff in SignOff.objects.select_related("item"):
        item = signoff.item
        paths = sorted(set(list(item.watches or []) + reads.get(item.key, [])))
        if signoff.fingerprint == _legacy_fingerprint(paths):
            signoff.digests = setting_digests(paths)
        else:
            signoff.digests = dict.fromkeys(paths, STALE)
        if item.key == SILENCED_CHECKS_WAIVER:
            signoff.covers = sorted(set(settings.SILENCED_SYSTEM_CHECKS))
        elif item.kind == "hybrid":
            latest = {}
            for result in CheckResult.objects.filter(item=item).order_by(
                "-run__started_at", "-pk"
            )[:200]:
                latest.setdefault(result.probe_id, result)
            current = [r for pid, r in latest.items() if pid in probe_ids.get(item.key, set())]
            signoff.covers = failure_keys(current)
        signoff.save(update_fields=["digests", "covers"])


class Migration(migrations.Migration):
    dependencies = [("readiness", "0002_load_catalogue")]

    operations = [
        migrations.AddField(
            model_name="section",
            name="na_snapshot",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="Per automated blocker, what was failing and a digest of each of its "
                "settings when the section was marked not applicable; a new failure or a changed "
                "setting makes the item count again.",
            ),
        ),
        migrations.AddField(
            model_name="signoff",
            name="covers",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="What the sign-off vouches for: the failing checks of a hybrid item when "
                "it was signed (a new failure makes it stale), the silenced checks for the waiver "
                "item.",
            ),
        ),
        migrations.AddField(
            model_name="signoff",
            name="digests",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="A digest of each setting the item depended on when it was signed; the "
                "sign-off goes stale when one of them changes.",
            ),
        ),
        migrations.AddField(
            model_name="signoff",
            name="evidence_text",
            field=models.TextField(
                blank=True,
                help_text="The item's evidence text when it was signed.",
                verbose_name="evidence",
            ),
        ),
        migrations.AlterField(
            model_name="checkresult",
            name="run",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="results",
                to="readiness.checkrun",
            ),
        ),
        migrations.RunPython(convert_signoffs, migrations.RunPython.noop),
    ]
