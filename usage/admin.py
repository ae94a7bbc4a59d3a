import csv
import re
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext

from safety.models import Category
from safety.selectors import daily_counts
from tutor_platform.api import ID_PATTERN
from tutor_platform.pseudonyms import student_key

from . import charts
from .dashboard import Dashboard, dashboard
from .models import UsageDashboard


@admin.register(UsageDashboard)
class UsageDashboardAdmin(admin.ModelAdmin):
    """The usage dashboard in place of a list: the last 30 days, all tutors
    or one, as charts, with the numbers as CSV (`?download=csv`)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list:
        view = self.admin_site.admin_view(self.changelist_view)
        return [path("", view, name=f"{self.opts.app_label}_{self.opts.model_name}_changelist")]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        tutor_id = _tutor_id(request.GET.get("tutor"))
        data = dashboard(tutor_id=tutor_id)
        if request.GET.get("download") == "csv":
            return _csv(data, tutor_id)
        days = [entry.day for entry in data.days]
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Usage dashboard"),
            "opts": self.opts,
            "data": data,
            "tutor_id": tutor_id,
            "last_day": days[-1],
            "charts": [
                charts.bar_chart(gettext("Replies per day"), days, [entry.messages for entry in data.days]),
                charts.bar_chart(gettext("Tokens per day"), days, [entry.tokens for entry in data.days]),
                charts.bar_chart(
                    gettext("Active students per day"), days, [entry.students for entry in data.days]
                ),
                charts.line_chart(
                    gettext("AI-Core failures, percent of asks"),
                    days,
                    {gettext("failure rate"): [entry.failure_rate for entry in data.days]},
                    unit="%",
                ),
                charts.line_chart(
                    gettext("AI-Core latency, ms"),
                    days,
                    {
                        gettext("median"): [entry.p50 for entry in data.days],
                        gettext("95th percentile"): [entry.p95 for entry in data.days],
                    },
                ),
                charts.line_chart(gettext("Mean rating"), days, data.ratings, top=5),
                charts.line_chart(
                    gettext("Safety flags per day, by category"),
                    days,
                    _category_names(daily_counts(first=days[0], last=days[-1], tutor_id=tutor_id))
                    or {gettext("none"): [0] * len(days)},
                ),
            ],
            "students": [
                {
                    **row,
                    "key": student_key(row["user_id"]),
                    "url": reverse("admin:accounts_user_change", args=[row["user_id"]])
                    if request.user.is_superuser
                    else None,
                }
                for row in data.nearest_quota
            ],
        }
        return TemplateResponse(request, "admin/usage/usage_dashboard.html", context)


def _category_names(counts: dict[str, list[int]]) -> dict[str, list[int]]:
    """The series under the categories' names (and `unchecked`), not their codes."""
    names = {**dict(Category.choices), "unchecked": gettext("unchecked")}
    return {str(names.get(code, code)): values for code, values in counts.items()}


def _tutor_id(raw: str | None) -> int | None:
    """A tutor id as the API's routes accept one; anything else shows all tutors."""
    return int(raw) if raw and re.fullmatch(ID_PATTERN, raw) else None


CSV_COLUMNS = [
    "day",
    "replies",
    "tokens",
    "active_students",
    "ai_core_failures",
    "failure_rate_percent",
    "latency_p50_ms",
    "latency_p95_ms",
]


def _csv(data: Dashboard, tutor_id: int | None) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    scope = f"tutor-{tutor_id}" if tutor_id is not None else "all-tutors"
    response["Content-Disposition"] = f'attachment; filename="usage-{scope}-{data.days[-1].day}.csv"'
    writer = csv.writer(response)
    writer.writerow([*CSV_COLUMNS, *(f"rating: {name}" for name in data.ratings)])
    for index, entry in enumerate(data.days):
        writer.writerow(
            [
                entry.day.isoformat(),
                entry.messages,
                entry.tokens,
                entry.students,
                entry.failures,
                "" if entry.failure_rate is None else entry.failure_rate,
                "" if entry.p50 is None else entry.p50,
                "" if entry.p95 is None else entry.p95,
                *("" if line[index] is None else line[index] for line in data.ratings.values()),
            ]
        )
    return response
