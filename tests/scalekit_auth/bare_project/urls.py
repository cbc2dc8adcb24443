"""``django-admin startproject`` URLs, then the README's ``urls.py`` snippet as written."""

from django.contrib import admin
from django.urls import path

from tests.scalekit_auth.bare_project import readme_block

urlpatterns = [
    path("admin/", admin.site.urls),
]

exec(readme_block("# urls.py"))
