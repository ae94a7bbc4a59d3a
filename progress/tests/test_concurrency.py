"""Real threads on PostgreSQL: concurrent adds and first reads lose nothing."""

import pytest

from conftest import bearer_client, requires_postgresql, run_in_threads
from progress.models import Progress

pytestmark = [pytest.mark.django_db(transaction=True), requires_postgresql]

THREADS = 24


def test_simultaneous_adds_lose_nothing(user, tutor):
    client = bearer_client(user)
    Progress.objects.create(user=user, tutor=tutor, total_minutes=100)

    def add(i: int) -> int:
        minutes = 10 if i % 3 else -5
        return client.post(
            f"/api/v1/progress/{tutor.id}/add/", {"minutes": minutes}, format="json"
        ).status_code

    assert run_in_threads(THREADS, add) == [200] * THREADS
    expected = 100 + sum(10 if i % 3 else -5 for i in range(THREADS))
    assert Progress.objects.get(user=user, tutor=tutor).total_minutes == expected


def test_simultaneous_adds_on_a_missing_row_create_it_once(user, tutor):
    client = bearer_client(user)

    def add(i: int) -> int:
        return client.post(f"/api/v1/progress/{tutor.id}/add/", {"minutes": 1}, format="json").status_code

    assert run_in_threads(THREADS, add) == [200] * THREADS
    assert Progress.objects.get(user=user, tutor=tutor).total_minutes == THREADS


def test_simultaneous_first_reads_create_one_row(user, tutor):
    client = bearer_client(user)

    def read(i: int) -> tuple[int, int]:
        response = client.get(f"/api/v1/progress/{tutor.id}/")
        return response.status_code, response.json()["total_minutes"]

    assert run_in_threads(THREADS, read) == [(200, 0)] * THREADS
    assert Progress.objects.filter(user=user, tutor=tutor).count() == 1
