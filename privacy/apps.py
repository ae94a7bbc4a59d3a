from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PrivacyConfig(AppConfig):
    """A student's data as a whole: the export, the erasure and the daily
    purge. The top layer: it reads every app, and no app imports it."""

    name = "privacy"
    verbose_name = _("Privacy")
