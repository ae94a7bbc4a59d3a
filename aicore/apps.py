from django.apps import AppConfig


class AicoreConfig(AppConfig):
    """The AI-Core client. Its migrations are the history of the usage
    rollups, which lived here until they moved to the `usage` app."""

    name = "aicore"
    verbose_name = "AI-Core"
