"""The contract's default policies, the Russian and English starter term
lists (safety/data/starter.json) and the Safety reviewers group."""

from django.db import migrations

from accounts.roles import SAFETY_REVIEWERS, sync_roles_in_migration
from safety import starter


def load(apps, schema_editor):
    starter.load(apps.get_model("safety", "Policy"), apps.get_model("safety", "Term"))
    sync_roles_in_migration(apps)


def unload(apps, schema_editor):
    apps.get_model("safety", "Term").objects.filter(note=starter.NOTE).delete()
    apps.get_model("safety", "Policy").objects.all().delete()
    apps.get_model("auth", "Group").objects.filter(name=SAFETY_REVIEWERS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("safety", "0001_initial"),
        ("accounts", "0004_usage"),
        ("usage", "0001_initial"),
        ("chats", "0007_message_moderation"),
    ]

    operations = [migrations.RunPython(load, unload)]
