from django.apps import AppConfig


class AicoreConfig(AppConfig):
    name = "aicore"
    verbose_name = "AI usage"
