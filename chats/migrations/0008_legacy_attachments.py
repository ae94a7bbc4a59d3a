"""A message's `attachments` now hold the uploads it shows (the attachments
app). What earlier clients sent there were free-form objects that nothing
checked; they move to the message's `metadata` (`legacy_attachments`,
seen by staff only), so every message's `attachments` has one shape."""

from django.db import migrations


def forwards(apps, schema_editor):
    Message = apps.get_model("chats", "Message")
    for message in Message.objects.exclude(attachments=[]).iterator(chunk_size=500):
        message.metadata = {**message.metadata, "legacy_attachments": message.attachments}
        message.attachments = []
        message.save(update_fields=["metadata", "attachments"])


def backwards(apps, schema_editor):
    Message = apps.get_model("chats", "Message")
    for message in Message.objects.filter(metadata__has_key="legacy_attachments").iterator(chunk_size=500):
        message.attachments = message.metadata.pop("legacy_attachments")
        message.save(update_fields=["metadata", "attachments"])


class Migration(migrations.Migration):
    dependencies = [("chats", "0007_message_moderation")]

    operations = [migrations.RunPython(forwards, backwards)]
