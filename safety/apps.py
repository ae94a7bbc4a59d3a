from django.apps import AppConfig


class SafetyConfig(AppConfig):
    name = "safety"
    verbose_name = "Safety"

    def ready(self) -> None:
        from . import checks, signals  # noqa: F401 (registers the checks, connects the receivers)
