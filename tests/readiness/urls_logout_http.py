from .urls_logout import with_logout
from .views import oidc_logout_to_http

urlpatterns = with_logout(oidc_logout_to_http)
