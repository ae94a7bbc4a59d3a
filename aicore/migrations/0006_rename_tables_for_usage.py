from django.db import migrations

# The usage rollups moved to the `usage` app: their tables take that app's
# names here, `usage.0001_initial` adopts them, `0007` forgets them.
MODELS = ("userdailyusage", "tutordailyusage", "dailystudents", "tutordailystudent")


class Migration(migrations.Migration):
    dependencies = [("aicore", "0005_count_existing_replies")]

    operations = [migrations.AlterModelTable(name=name, table=f"usage_{name}") for name in MODELS]
