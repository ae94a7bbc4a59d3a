"""The contract's default policies and the Russian and English starter term
lists (safety/data/starter.json), and the Safety reviewers group."""

import json
from pathlib import Path

from django.db import migrations

from accounts.roles import SAFETY_REVIEWERS, sync_roles_in_migration

STARTER = Path(__file__).resolve().parent.parent / "data" / "starter.json"


def load(apps, schema_editor):
    data = json.loads(STARTER.read_text(encoding="utf-8"))
    Policy, Term = apps.get_model("safety", "Policy"), apps.get_model("safety", "Term")
    for policy in data["policies"]:
        Policy.objects.update_or_create(category=policy["category"], defaults=policy)
    Term.objects.bulk_create([Term(**term, note="starter list") for term in data["terms"]], ignore_conflicts=True)
    sync_roles_in_migration(apps)


def unload(apps, schema_editor):
    apps.get_model("safety", "Term").objects.filter(note="starter list").delete()
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
