from django.db import migrations
from django.db.models import Max, Min


def count_existing_replies(apps, schema_editor):
    """The rollups of every day that has replies already (see aicore.usage.rebuild)."""
    from aicore.usage import rebuild, utc_day

    Message = apps.get_model("chats", "Message")
    span = Message.objects.filter(role="assistant").aggregate(first=Min("created_at"), last=Max("created_at"))
    if span["first"] is not None:
        rebuild(utc_day(span["first"]), utc_day(span["last"]), apps)


class Migration(migrations.Migration):
    # Its own migration: the unique constraints the rebuild's upserts need
    # exist only once 0001 has finished (PostgreSQL adds them last).
    dependencies = [("aicore", "0001_usage")]

    operations = [migrations.RunPython(count_existing_replies, migrations.RunPython.noop, elidable=True)]
