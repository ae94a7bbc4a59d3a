from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from accounts.views import admin_login

from .health import HealthView

api_v1 = [
    path("auth/", include("accounts.urls")),
    path("", include("tutoring.urls")),
    path("", include("chats.urls")),
    path("", include("feedback.urls")),
    path("", include("progress.urls")),
    path("health/", HealthView.as_view(), name="health"),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    # Before admin.site.urls, so the throttled view answers /admin/login/.
    path("admin/login/", admin_login),
    path("admin/", admin.site.urls),
]

handler400 = "tutor_platform.exceptions.bad_request"
handler403 = "tutor_platform.exceptions.permission_denied"
handler404 = "tutor_platform.exceptions.page_not_found"
handler500 = "tutor_platform.exceptions.server_error"
