"""Set-up shared by the benchmarks that drive Django in their own process
(export_memory.py, dashboard.py): a fresh PostgreSQL database, then Django on it."""

import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
PG = "postgres://postgres@127.0.0.1:5432"


def django_on_fresh_database(name: str) -> None:
    """Drops and creates database `name`, sets Django up on it (DEBUG, test
    client host, the stub) and migrates it."""
    subprocess.run(["psql", PG + "/postgres", "-qc", f"DROP DATABASE IF EXISTS {name}"], check=True)
    subprocess.run(["psql", PG + "/postgres", "-qc", f"CREATE DATABASE {name}"], check=True)
    os.environ.update(
        ENV_FILE=os.devnull,
        DEBUG="True",  # static files without collectstatic
        DATABASE_URL=f"{PG}/{name}",
        ALLOWED_HOSTS="testserver",
        AI_CORE_URL="stub",
        AI_CORE_ALLOW_STUB="True",
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="tutor_platform.settings",
    )
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def drop_database(name: str) -> None:
    from django.db import connection

    connection.close()
    subprocess.run(["psql", PG + "/postgres", "-qc", f"DROP DATABASE {name}"], check=True)
