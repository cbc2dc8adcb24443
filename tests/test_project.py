import re
from pathlib import Path

from django.core.management import call_command
from django.test import Client

ROOT = Path(__file__).resolve().parent.parent


def test_system_checks_pass():
    call_command("check", fail_level="WARNING")


def test_admin_login_page_renders(db):
    response = Client().get("/admin/login/")
    assert response.status_code == 200
    assert b"Django administration" in response.content


def test_env_example_lists_every_variable_the_settings_read():
    """config/settings.py promises that .env.example lists them all."""
    settings_source = (ROOT / "config" / "settings.py").read_text()
    read = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z][A-Z0-9_]+)"', settings_source))
    example = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, flags=re.MULTILINE))
    assert len(read) > 15
    assert read - listed == set()
