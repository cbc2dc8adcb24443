"""scalekit_auth's views, with a callback that exchanges the code before checking the state."""

from django.urls import include, path

from scalekit_auth import urls as real

from . import views

patterns = [p for p in real.urlpatterns if p.name != "callback"]
patterns.append(path("callback/", views.exchanging_callback, name="callback"))

urlpatterns = [path("auth/", include((patterns, "scalekit_auth")))]
