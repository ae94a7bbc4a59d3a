"""Issue 11: the schema is exact enough for a generated client to need no
workaround. The Python client is generated with openapi-python-client, a
scripted student session (client_session.py) is type-checked against it with
`mypy --strict`, then run against a live server."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command

from accounts.models import User
from aicore.tests.test_stub_server import serve_stub
from conftest import PASSWORD
from tutoring.experiments import experiment_start
from tutoring.models import Experiment, ExperimentArm
from tutoring.services import TutorContent, tutor_version_save

pytestmark = pytest.mark.system  # starts servers or processes: not in `-m "not system"`

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def generated_client(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("client")
    call_command("spectacular", "--file", str(work / "schema.yaml"))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    generated = subprocess.run(
        [str(BIN / "openapi-python-client"), "generate", "--path", "schema.yaml", "--output-path", "tutor_client",
         "--meta", "none"],
        cwd=work, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert "Warning" not in generated.stdout + generated.stderr, generated.stdout + generated.stderr
    return work


def test_the_student_session_type_checks_against_the_generated_client(generated_client):
    checked = subprocess.run(
        [str(BIN / "mypy"), "--strict", "--follow-imports=silent", "--cache-dir", str(generated_client / ".mypy"),
         str(HERE / "client_session.py")],
        env={**os.environ, "MYPYPATH": str(generated_client)}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.fixture(scope="module")
def ts_client(generated_client) -> Path:
    """The TypeScript client: openapi-typescript's types for the same schema,
    openapi-fetch for the calls (pinned in ts_client/package-lock.json)."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: the TypeScript client check needs Node.js 20+ and npm")
    work = generated_client / "ts"
    shutil.copytree(HERE / "ts_client", work, ignore=shutil.ignore_patterns("node_modules", "build"))
    for command in (
        [npm, "ci", "--no-audit", "--no-fund"],
        [npm, "exec", "--", "openapi-typescript", "../schema.yaml", "-o", "schema.d.ts"],
    ):
        done = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    return work


def test_the_typescript_session_type_checks_and_runs(ts_client, live_server, tutor, django_db_blocker):
    """Issue 24: generated with openapi-typescript, called with openapi-fetch,
    checked with tsc --strict (exactOptionalPropertyTypes, noUncheckedIndexedAccess)."""
    compiled = subprocess.run(
        [shutil.which("npm"), "exec", "--", "tsc", "-p", "."], cwd=ts_client, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    ran = subprocess.run(
        [shutil.which("node"), "build/session.js", live_server.url, "typescript@example.com", PASSWORD],
        cwd=ts_client, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "session ok: " in ran.stdout and "Что такое дробь?" in ran.stdout
    with django_db_blocker.unblock():
        assert not User.objects.filter(email="typescript@example.com").exists()  # erased at the end


def test_the_session_calls_every_operation_of_the_schema(generated_client):
    """Issue 24, item 7: two operations the schema got wrong passed because the session never called them."""
    schema = yaml.safe_load((generated_client / "schema.yaml").read_text())
    operations = {op["operationId"] for item in schema["paths"].values() for op in item.values()}
    called = set(re.findall(r"\b([a-z_]+)\.sync\(", (HERE / "client_session.py").read_text()))
    assert operations - called == set()


@pytest.fixture(scope="module")
def openai_stub():
    for url in serve_stub("--protocol", "openai"):
        yield f"{url}/v1"


@pytest.fixture(params=["aicore", "openai"])
def model_server(request, settings):
    """The built-in stub in process (AI-Core's protocol), and the stub's
    server in OpenAI's protocol (issue 31: the session end to end on both)."""
    if request.param == "openai":
        settings.AI_CORE_URL = request.getfixturevalue("openai_stub")
        settings.AI_CORE_PROTOCOL = "openai"
    return request.param


@pytest.mark.django_db(transaction=True)
def test_the_session_runs_through_the_generated_client(
    generated_client, live_server, tutor, ml_user, model_server
):
    # A running experiment on the tutor: the session reads its statistics.
    v2 = tutor_version_save(
        tutor=tutor, content=TutorContent("Ты — репетитор. Задавай вопросы.", tutor.model_id)
    )
    experiment = Experiment.objects.create(tutor=tutor, name="Наводящие вопросы")
    for position, version in enumerate((tutor.versions.get(number=1), v2)):
        ExperimentArm.objects.create(experiment=experiment, position=position, version=version, weight=50)
    experiment_start(experiment=experiment, by=None)
    sys.path.insert(0, str(generated_client))
    try:
        spec = importlib.util.spec_from_file_location("client_session", HERE / "client_session.py")
        session = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(session)
        reply = session.run(live_server.url, "generated@example.com", PASSWORD, ml_user.email, PASSWORD)
    finally:
        sys.path.remove(str(generated_client))
    assert "Что такое дробь?" in reply
    assert not User.objects.filter(email="generated@example.com").exists()  # erased at the end
