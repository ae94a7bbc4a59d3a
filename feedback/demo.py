"""`seed_demo --staff` (development only): staff to log in as, and a few
weeks of students' activity, so the triage screen, the dashboard and the
version statistics are not empty on a fresh machine."""

import random
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.roles import Role
from accounts.services import user_set_role
from chats.models import Chat, Message
from feedback.services import feedback_submit
from progress.models import Progress
from tutoring.models import Tutor
from usage.services import rebuild

STAFF = [
    ("admin@demo.local", "demo_admin", Role.SUPERUSER),
    ("editor@demo.local", "demo_editor", Role.CONTENT_EDITOR),
    ("ml@demo.local", "demo_ml", Role.ML_TEAM),
]
REACTIONS = ["understood", "too_hard", "need_more_examples"]
STUDENTS = 6
DAYS = 14
QUESTIONS = [
    ("Как решить x² − 5x + 6 = 0?", "Найдём дискриминант: D = 25 − 24 = 1, значит корни 2 и 3."),
    ("Что такое производная?", "Это скорость изменения функции: предел отношения приращений."),
    ("Почему тело падает с ускорением?", "На него действует сила тяжести, F = mg, значит a = g."),
    ("Как работает цикл for в Python?", "Он берёт элементы последовательности по одному: for x in items."),
    ("Когда ставится артикль the?", "Когда предмет уже известен собеседнику или единственный в своём роде."),
]


def staff_accounts() -> list[tuple[str, str, str]]:
    """Creates (or resets) the demo staff: (email, role, a new password) each."""
    made = []
    for email, username, role in STAFF:
        user = User.objects.filter(email=email).first() or User.objects.create_user(
            email=email, username=username, password=None
        )
        password = secrets.token_urlsafe(9)
        user.set_password(password)
        user.save()
        user_set_role(user=user, role=role)
        made.append((email, Role(role).label, password))
    return made


@transaction.atomic
def student_activity(seed: int = 7) -> int:
    """Students' chats over the last DAYS days with replies, feedback and
    minutes of study, once (nothing is added when the demo students exist).
    Returns the number of replies."""
    if User.objects.filter(email__endswith="@students.demo.local").exists():
        return 0
    chance = random.Random(seed)  # noqa: S311 (demo data, the same every time)
    tutors = list(Tutor.objects.filter(is_active=True).select_related("current_version"))
    now, replies = timezone.now(), 0
    for n in range(1, STUDENTS + 1):
        student = User.objects.create_user(
            email=f"student{n}@students.demo.local", username=f"demo_student{n}", password=None
        )
        for tutor in chance.sample(tutors, k=min(2, len(tutors))):
            chat = Chat.objects.create(user=student, tutor=tutor)
            Progress.objects.create(user=student, tutor=tutor, total_minutes=chance.randint(10, 240))
            for day in sorted(chance.sample(range(DAYS), k=3), reverse=True):
                at = now - timedelta(days=day, hours=chance.randint(0, 8))
                question, answer = chance.choice(QUESTIONS)
                asked = Message.objects.create(chat=chat, role="user", content=question, created_at=at)
                tokens, latency = chance.randint(40, 400), chance.randint(600, 4000)
                reply = Message.objects.create(
                    chat=chat, role="assistant", content=answer, reply_to=asked, created_at=at,
                    tutor_version=tutor.current_version, tokens_used=tokens, latency_ms=latency,
                    metadata={"tokens_used": tokens, "latency_ms": latency, "model_id": tutor.model_id},
                )  # fmt: skip
                replies += 1
                if chance.random() < 0.6:
                    detailed = chance.random() < 0.5
                    fields = (
                        {"rating": chance.randint(2, 5), "improvement_text": "Больше примеров"}
                        if detailed
                        else {
                            "quick_reaction": chance.choice(["understood", "too_hard", "need_more_examples"])
                        }
                    )
                    feedback_submit(
                        user=student, message_id=reply.pk, feedback_type="detailed" if detailed else "quick",
                        fields={**fields, "allow_training": chance.random() < 0.7},
                    )  # fmt: skip
            Chat.objects.filter(pk=chat.pk).update(last_message_at=at, title=question[:60])
    rebuild((now - timedelta(days=DAYS)).date(), now.date())
    return replies
