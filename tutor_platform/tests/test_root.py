"""Issue 26, item 12: `/api/v1/` (linked from the README) lists the entry points."""

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_the_api_root_lists_entry_points_that_answer(user, auth_client):
    response = APIClient().get("/api/v1/", HTTP_AUTHORIZATION="Bearer not-a-token")  # no token needed
    assert response.status_code == 200
    root = response.json()
    assert root["chats"] == "/api/v1/chats/" and root["attachments"] == "/api/v1/attachments/"
    assert root["docs"] == "/docs/" and root["schema"] == "/api/schema/"
    for name in ("courses", "tutors", "chats", "feedback", "progress", "health", "me"):
        assert auth_client.get(root[name]).status_code == 200, name
