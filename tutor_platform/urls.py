from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.views import admin_login

from .health import HealthView
from .root import ApiRootView

api_v1 = [
    path("", ApiRootView.as_view(), name="api-root"),
    path("auth/", include("accounts.urls")),
    path("auth/", include("privacy.urls")),
    path("auth/", include("usage.urls")),
    path("", include("tutoring.urls")),
    path("", include("chats.urls")),
    path("", include("feedback.urls")),
    path("", include("progress.urls")),
    path("", include("attachments.urls")),
    path("health/", HealthView.as_view(), name="health"),
]

# The admin looks like this product, in the staff's language (StaffLocaleMiddleware).
admin.site.site_header = _("AI Tutor · staff")
admin.site.site_title = _("AI Tutor staff")
admin.site.index_title = _("Courses, tutors and student feedback")
admin.site.site_url = settings.FRONTEND_URL or None  # "View site": the students' app, when known
# The lists need the width on a 1366-px laptop more than a second menu does.
admin.site.enable_nav_sidebar = False
# simplejwt's token bookkeeping is not the staff's to read or edit (logout and
# the daily purge keep it); its rows are bearer credentials.
for model in (OutstandingToken, BlacklistedToken):
    if admin.site.is_registered(model):
        admin.site.unregister(model)

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    # Before admin.site.urls, so the throttled view answers /admin/login/.
    path("admin/login/", admin_login),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),  # set_language: the admin's language switch
]

handler400 = "tutor_platform.exceptions.bad_request"
handler403 = "tutor_platform.exceptions.permission_denied"
handler404 = "tutor_platform.exceptions.page_not_found"
handler500 = "tutor_platform.exceptions.server_error"
