from django.db import migrations


class Migration(migrations.Migration):
    # The rollups of existing replies are counted in 0005, once every rollup
    # table exists; this step is kept so that databases which ran it keep a
    # consistent history.
    dependencies = [("aicore", "0001_usage")]

    operations = []
