"""Creates (or refreshes) a realistic demo catalogue. Safe to run any number of times."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from tutoring.catalogue import catalogue_changed
from tutoring.models import Course, Tutor
from tutoring.services import TutorContent, tutor_version_save

CATALOGUE: list[dict[str, Any]] = [
    {
        "slug": "mathematics",
        "name": "Математика",
        "description": "Алгебра, геометрия и начала анализа: от школьной программы до подготовки к ЕГЭ.",
        "tutors": [
            {
                "name": "Анна — математика",
                "description": "Терпеливо объясняет алгебру и геометрию по шагам, с примерами из жизни.",
                "model_id": "tutor-math-v1",
                "knowledge_base_id": "kb-math-school",
                "system_prompt": (
                    "Ты — Анна, доброжелательный репетитор по математике для школьников 7–11 классов.\n"
                    "Отвечай на русском языке, если ученик не пишет на другом.\n"
                    "Не давай готовый ответ сразу: сначала уточни, что ученик уже понимает, затем веди "
                    "его к решению наводящими вопросами и короткими шагами.\n"
                    "Каждый шаг решения записывай отдельной строкой, формулы оформляй в LaTeX ($...$).\n"
                    "Если ученик ошибся, укажи, в каком именно шаге, и объясни почему, без оценок личности.\n"
                    "В конце предложи похожую задачу для самопроверки.\n"
                    "Если вопрос не относится к математике, вежливо верни разговор к учёбе."
                ),
            },
            {
                "name": "Игорь — подготовка к ЕГЭ",
                "description": "Разбирает задачи ЕГЭ профильного уровня, следит за оформлением и временем.",
                "model_id": "tutor-math-exam-v1",
                "knowledge_base_id": "kb-math-ege",
                "system_prompt": (
                    "Ты — Игорь, репетитор по подготовке к профильному ЕГЭ по математике.\n"
                    "Опирайся на актуальную спецификацию экзамена и критерии оценивания ФИПИ.\n"
                    "Для каждой задачи называй её номер в варианте, тему и типичные ошибки.\n"
                    "Показывай полное решение так, как его нужно оформить на экзамене, "
                    "и отдельно — короткий путь для самопроверки.\n"
                    "Подсказывай, сколько времени разумно тратить на задачу.\n"
                    "Пиши по-русски, формулы — в LaTeX."
                ),
            },
        ],
    },
    {
        "slug": "physics",
        "name": "Физика",
        "description": "Механика, электричество, оптика: понимание явлений и решение задач.",
        "tutors": [
            {
                "name": "Павел — физика",
                "description": "Связывает формулы с реальными явлениями и учит решать задачи по алгоритму.",
                "model_id": "tutor-physics-v1",
                "knowledge_base_id": "kb-physics-school",
                "system_prompt": (
                    "Ты — Павел, репетитор по физике для школьников.\n"
                    "Начинай с физического смысла явления, затем переходи к формулам.\n"
                    "Решая задачу, всегда: 1) запиши «Дано» с единицами СИ, 2) сделай рисунок словами "
                    "или схему, 3) назови закон, 4) выведи формулу в общем виде, 5) подставь числа, "
                    "6) проверь размерность и правдоподобие ответа.\n"
                    "Не выдумывай численные константы: используй стандартные значения и называй их.\n"
                    "Отвечай по-русски, понятным языком."
                ),
            },
        ],
    },
    {
        "slug": "programming",
        "name": "Программирование",
        "description": "Python с нуля: переменные, циклы, функции, структуры данных и первые проекты.",
        "tutors": [
            {
                "name": "Макс — Python",
                "description": "Учит Python на маленьких задачах, читает ваш код и помогает найти ошибку.",
                "model_id": "tutor-python-v1",
                "knowledge_base_id": "kb-python-basics",
                "system_prompt": (
                    "Ты — Макс, наставник по программированию на Python для начинающих.\n"
                    "Объясняй по-русски, код и его комментарии пиши на английском, в блоках ```python.\n"
                    "Если ученик присылает код с ошибкой, не переписывай его целиком: укажи строку, "
                    "объясни сообщение об ошибке и предложи минимальное исправление.\n"
                    "Поощряй запускать код и проверять гипотезы самостоятельно.\n"
                    "Не используй сторонние библиотеки, пока ученик не освоил стандартную.\n"
                    "Никогда не выполняй и не предлагай опасные команды для системы ученика."
                ),
            },
        ],
    },
    {
        "slug": "english",
        "name": "Английский язык",
        "description": "Грамматика, лексика и разговорная практика для русскоговорящих учеников.",
        "tutors": [
            {
                "name": "Emily — English",
                "description": "Разговорная практика и грамматика с объяснениями на русском языке.",
                "model_id": "tutor-english-v1",
                "knowledge_base_id": "kb-english-a2-b2",
                "system_prompt": (
                    "You are Emily, a friendly English tutor for Russian-speaking students (levels A2–B2).\n"
                    "Reply mainly in simple English; explain grammar rules in Russian when the student "
                    "is confused or asks for it.\n"
                    "Correct mistakes gently: quote the wrong phrase, give the correct version, and "
                    "explain the rule in one sentence.\n"
                    "End each reply with a short question that keeps the conversation going.\n"
                    "Adapt vocabulary to the student's level and avoid idioms without explanation."
                ),
            },
        ],
    },
]


class Command(BaseCommand):
    help = "Create or refresh the demo courses and tutors (idempotent); --staff adds demo staff and activity."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--staff",
            action="store_true",
            help="Development only: an admin, a content editor and an ML team member (passwords printed), "
            "and a few weeks of students' chats, feedback and usage.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["staff"] and not settings.DEBUG:
            raise CommandError("--staff is for development (DEBUG=True): it prints passwords.")
        self._catalogue()
        if options["staff"]:
            # In feedback, which already uses chats, progress and usage (tutoring must not).
            from feedback import demo

            for email, role, password in demo.staff_accounts():
                self.stdout.write(f"{role.split(':')[0]}: {email} / {password}")
            replies = demo.student_activity()
            self.stdout.write(f"Demo students' activity: {replies} new replies.")

    @transaction.atomic
    def _catalogue(self) -> None:
        courses = tutors = 0
        for course_data in CATALOGUE:
            tutors_data = course_data["tutors"]
            # By slug, or by name (course names are unique regardless of case).
            course = (
                Course.objects.filter(slug=course_data["slug"]).first()
                or Course.objects.filter(name__iexact=course_data["name"]).first()
            )
            created = course is None
            if created:
                course = Course(slug=course_data["slug"])
            course.name, course.description = course_data["name"], course_data["description"]
            course.is_active = True
            course.save()
            courses += created
            for tutor_data in tutors_data:
                data = dict(tutor_data)
                content = TutorContent(
                    data.pop("system_prompt"), data.pop("model_id"), data.pop("knowledge_base_id", "")
                )
                tutor, created = Tutor.objects.update_or_create(
                    course=course, name=data.pop("name"), defaults={**data, "is_active": True}
                )
                # A new version only when the demo content differs from the current one.
                tutor_version_save(tutor=tutor, content=content, note="Demo catalogue (seed_demo)")
                tutors += created
        catalogue_changed()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo catalogue ready: {Course.objects.count()} courses, {Tutor.objects.count()} tutors "
                f"({courses} courses and {tutors} tutors new)."
            )
        )
