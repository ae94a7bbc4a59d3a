from django.db import migrations
from django.db.models import Max, Min


def count_existing_replies(apps, schema_editor):
    """The rollups of every day that has replies already (see usage.services.rebuild)."""
    from usage.services import rebuild, utc_day

    Message = apps.get_model("chats", "Message")
    span = Message.objects.filter(role="assistant").aggregate(first=Min("created_at"), last=Max("created_at"))
    if span["first"] is not None:
        rebuild(utc_day(span["first"]), utc_day(span["last"]), apps, app_label="aicore")


class Migration(migrations.Migration):
    # Its own migration, after every rollup table exists: the unique
    # constraints the rebuild's upserts need are added last in a migration.
    # (It was 0002 before the students counters; a database that ran that
    # one is simply recounted here.)
    dependencies = [("aicore", "0004_daily_students")]

    operations = [migrations.RunPython(count_existing_replies, migrations.RunPython.noop, elidable=True)]
