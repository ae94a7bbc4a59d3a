"""The chat URLs' authentication against simplejwt's own, in-process.

    .venv/bin/python bench/chat_auth.py

On a chat's own URL, ChatViewSet authenticates with
BearerAuthentication(user_loaded_by_view=True): the token is checked, the
user comes joined to the chat in one query, and simplejwt's user checks
run on it (`verify`). The standard way is simplejwt's JWTAuthentication
loading the user (one query), then the chat (another). This serves GET
`.../messages/` (a 50-message page) and GET `/chats/{id}/` both ways,
interleaved, on PostgreSQL, and reports Django's CPU, PostgreSQL's CPU and
the queries per request. The result is in docs/decisions.
"""

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from in_process import django_on_fresh_database, drop_database
from run import postgres_cpu_seconds

DB_NAME = "tutor_bench_auth"
REQUESTS = 1000
ROUNDS = 5


def main() -> None:
    os.environ.update(THROTTLE_USER_RATE="100000000/min", THROTTLE_ANON_RATE="100000000/min")
    django_on_fresh_database(DB_NAME)
    from django.db import connection
    from django.http import Http404
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from rest_framework_simplejwt.authentication import JWTAuthentication

    from accounts.models import User
    from accounts.tokens import token_pair
    from chats.models import Chat, Message
    from chats.views import ChatViewSet
    from tutoring.models import Course, Tutor
    from tutoring.services import TutorContent, tutor_create

    course = Course.objects.create(name="Математика", slug="math", is_active=True)
    tutor = tutor_create(
        tutor=Tutor(course=course, name="Анна", is_active=True),
        content=TutorContent("Ты — репетитор.", "math-v1", "kb"),
    )
    user = User.objects.create_user(email="s@bench.example.com", username="s", password="Correct-Horse-42")
    chat = Chat.objects.create(user=user, tutor=tutor, title="Квадратные уравнения")
    for n in range(25):
        question = Message.objects.create(chat=chat, role="user", content=f"Вопрос {n}")
        Message.objects.create(chat=chat, role="assistant", content=f"Ответ {n} " * 40, reply_to=question)
    token = token_pair(user)["access"]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    ours = (ChatViewSet.get_authenticators, ChatViewSet.initial)

    def standard_authenticators(self):  # DRF's default path: simplejwt loads the user
        return [JWTAuthentication()]

    def standard_initial(self, request, *args, **kwargs):
        super(ChatViewSet, self).initial(request, *args, **kwargs)
        if not self.detail or getattr(self, request.method.lower(), None) is None:
            return
        from chats import selectors

        chat = selectors.owned_chat(chat_id=int(kwargs["pk"]), user_id=request.user.pk)
        if chat is None:
            raise Http404
        self.chat = chat

    variants = {
        "chat URL authentication (this code)": ours,
        "simplejwt JWTAuthentication, then the chat": (standard_authenticators, standard_initial),
    }
    paths = {"50-message page": f"/api/v1/chats/{chat.pk}/messages/", "chat": f"/api/v1/chats/{chat.pk}/"}
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    queries: dict[tuple[str, str], int] = {}
    for _round in range(ROUNDS):
        for name, (authenticators, initial) in variants.items():
            ChatViewSet.get_authenticators, ChatViewSet.initial = authenticators, initial
            for label, path in paths.items():
                for _ in range(20):
                    response = client.get(path)
                    assert response.status_code == 200, (response.status_code, response.content[:300])
                with CaptureQueriesContext(connection) as captured:
                    client.get(path)
                queries[name, label] = len(captured)
                cpu, pg = time.process_time(), postgres_cpu_seconds()
                for _ in range(REQUESTS):
                    client.get(path)
                results.setdefault((name, label), []).append(
                    ((time.process_time() - cpu) / REQUESTS, (postgres_cpu_seconds() - pg) / REQUESTS)
                )
    ChatViewSet.get_authenticators, ChatViewSet.initial = ours
    print("| request | authentication | queries | Django CPU | PostgreSQL CPU |")
    print("|---|---|---|---|---|")
    for (name, label), samples in results.items():
        django_ms = statistics.median(s[0] for s in samples) * 1000
        pg_ms = statistics.median(s[1] for s in samples) * 1000
        print(f"| {label} | {name} | {queries[name, label]} | {django_ms:.3f} ms | {pg_ms:.3f} ms |")
    drop_database(DB_NAME)


if __name__ == "__main__":
    main()
