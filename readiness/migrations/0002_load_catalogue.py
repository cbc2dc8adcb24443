"""Load the checklists from readiness/catalogue.py; later changes come with manage.py readiness_sync."""

from django.db import migrations


def load(apps, schema_editor):
    from readiness.sync import sync_catalogue

    sync_catalogue(
        apps.get_model("readiness", "Section"),
        apps.get_model("readiness", "ChecklistItem"),
        apps.get_model("readiness", "ItemEvent"),
    )


class Migration(migrations.Migration):
    dependencies = [("readiness", "0001_initial")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
