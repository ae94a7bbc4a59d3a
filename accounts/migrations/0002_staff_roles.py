from django.db import migrations

from accounts.roles import ROLE_PERMISSIONS, sync_roles_in_migration


def create_roles(apps, schema_editor):
    sync_roles_in_migration(apps)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("tutoring", "0001_initial"),
        ("chats", "0001_initial"),
        ("feedback", "0001_initial"),
        ("progress", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
