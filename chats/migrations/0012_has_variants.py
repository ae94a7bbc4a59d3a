from django.db import migrations, models


def mark_chats_with_variants(apps, schema_editor):
    """A chat where a reply was regenerated keeps a reply that is not current."""
    Chat, Message = apps.get_model("chats", "Chat"), apps.get_model("chats", "Message")
    regenerated = Message.objects.filter(is_current=False).values("chat_id")
    Chat.objects.filter(pk__in=regenerated).update(has_variants=True)


class Migration(migrations.Migration):
    dependencies = [
        ("chats", "0011_experiment_arm"),
    ]

    operations = [
        migrations.AddField(
            model_name="chat",
            name="has_variants",
            field=models.BooleanField(
                db_default=False, default=False, editable=False, verbose_name="has variants"
            ),
        ),
        migrations.RunPython(mark_chats_with_variants, migrations.RunPython.noop, elidable=True),
    ]
