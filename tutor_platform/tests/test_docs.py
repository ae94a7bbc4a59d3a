"""Issue 11: the docs work from a fresh clone."""

import re
import shutil
import subprocess
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


def test_the_readme_and_the_api_guide_name_nothing_outside_the_repository():
    for doc in ("README.md", "docs/API.md"):
        text = (BASE_DIR / doc).read_text()
        assert not re.search(r"(?<!\.)\.\./", text), doc  # `../shared`, not an ellipsis `.../`
        for link in re.findall(r"\]\(([^)#]+)\)", text):
            if not link.startswith("http"):
                assert (BASE_DIR / link).exists(), f"{doc} links to {link}, which is missing"


def test_make_run_takes_a_port():
    dry = subprocess.run(
        [shutil.which("make") or "/usr/bin/make", "-n", "run", "PORT=8001"],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dry.returncode == 0, dry.stderr
    assert "runserver 127.0.0.1:8001" in dry.stdout


def test_every_error_code_the_api_guide_lists_exists_in_the_code():
    guide = (BASE_DIR / "docs" / "API.md").read_text()
    table = guide[guide.index("| status | codes |") : guide.index("Every response carries")]
    codes = set(re.findall(r"`([a-z_]{4,})`", table))
    source = (
        "\n".join(
            path.read_text()
            for path in BASE_DIR.glob("*/**/*.py")
            if ".venv" not in path.parts and "tests" not in path.parts
        )
        + (BASE_DIR / "deploy" / "nginx.conf").read_text()
    )
    from rest_framework import exceptions

    drf_codes = {
        cls.default_code
        for cls in vars(exceptions).values()
        if isinstance(cls, type) and hasattr(cls, "default_code")
    }
    missing = {code for code in codes if code not in source and code not in drf_codes} - {"token_not_valid"}
    assert missing == set()


def test_every_scheduled_job_in_deploy_crontab_is_a_real_command():
    from django.core.management import get_commands

    crontab = (BASE_DIR / "deploy" / "crontab").read_text()
    jobs = re.findall(r"manage\.py (\w+)", crontab)
    assert {"purge_expired", "export_training_data"} <= set(jobs)
    assert set(jobs) <= set(get_commands())
