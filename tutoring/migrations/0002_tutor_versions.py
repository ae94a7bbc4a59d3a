import re

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def tutors_get_version_1(apps, schema_editor):
    """Every tutor's content so far becomes its version 1."""
    Tutor = apps.get_model("tutoring", "Tutor")
    TutorVersion = apps.get_model("tutoring", "TutorVersion")
    for tutor in Tutor.objects.order_by("pk").iterator():
        prompt = re.sub(r"[ \t\f\v]+$", "", tutor.system_prompt.replace("\r\n", "\n"), flags=re.M)
        version = TutorVersion.objects.create(
            tutor=tutor,
            number=1,
            system_prompt=prompt.rstrip(),
            model_id=tutor.model_id,
            knowledge_base_id=tutor.knowledge_base_id,
            note="The content before versions were kept.",
        )
        Tutor.objects.filter(pk=tutor.pk).update(current_version=version)


class Migration(migrations.Migration):
    dependencies = [
        ("tutoring", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="course",
            name="is_active",
            field=models.BooleanField(default=False),
        ),
        migrations.AlterField(
            model_name="tutor",
            name="is_active",
            field=models.BooleanField(default=False),
        ),
        migrations.CreateModel(
            name="TutorVersion",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("number", models.PositiveIntegerField()),
                (
                    "system_prompt",
                    models.TextField(blank=True, help_text="Instructions sent to AI-Core with every message."),
                ),
                ("model_id", models.CharField(help_text="AI-Core model that answers for this tutor.", max_length=200)),
                ("knowledge_base_id", models.CharField(blank=True, max_length=200)),
                ("note", models.CharField(blank=True, help_text="What changed and why.", max_length=500)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "tutor",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="versions", to="tutoring.tutor"
                    ),
                ),
            ],
            options={"ordering": ["tutor", "-number"]},
        ),
        migrations.AddField(
            model_name="tutor",
            name="current_version",
            field=models.OneToOneField(
                blank=True,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="tutoring.tutorversion",
            ),
        ),
        migrations.AddConstraint(
            model_name="tutorversion",
            constraint=models.UniqueConstraint(fields=("tutor", "number"), name="tutor_version_number_unique"),
        ),
        migrations.AddConstraint(
            model_name="tutorversion",
            constraint=models.CheckConstraint(
                condition=models.Q(("number__gte", 1)), name="tutor_version_number_positive"
            ),
        ),
        migrations.RunPython(tutors_get_version_1, migrations.RunPython.noop),
        migrations.RemoveField(model_name="tutor", name="knowledge_base_id"),
        migrations.RemoveField(model_name="tutor", name="model_id"),
        migrations.RemoveField(model_name="tutor", name="system_prompt"),
    ]
