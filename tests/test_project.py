from django.core.management import call_command
from django.test import Client


def test_system_checks_pass():
    call_command("check", fail_level="WARNING")


def test_admin_login_page_renders(db):
    response = Client().get("/admin/login/")
    assert response.status_code == 200
    assert b"Django administration" in response.content
