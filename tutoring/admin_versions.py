"""The content editor's version workflow on a tutor's admin page: history
with statistics, a side-by-side diff of any two versions, restore, and the
try-it panel that asks AI-Core with an unsaved prompt.

Views are added to TutorAdmin by `version_urls`; each checks the admin's own
permissions (view for history and diff, change for restore and try-it).
"""

import difflib
import re
import uuid
from typing import TYPE_CHECKING

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from aicore.exceptions import AICoreError
from feedback.models import Feedback
from feedback.selectors import VersionStats, tutor_version_stats
from tutor_platform.throttling import TryItThrottle

from . import services
from .models import TeachingMode, Tutor, TutorVersion
from .preview import preview_reply
from .services import TutorContent

if TYPE_CHECKING:
    from .admin import TutorAdmin

QUESTION_MAX_CHARS = 2000


# difflib's navigation columns (links headed "f", "n", "t") and its empty colgroups.
DIFF_NAVIGATION = re.compile(r'<t[dh] class="diff_next"[^>]*>.*?</t[dh]>|<colgroup></colgroup>', re.DOTALL)


def prompt_diff(left: TutorVersion, right: TutorVersion) -> str:
    """The two prompts side by side, changes marked. Lines are not cut at a
    column (difflib's wrapcolumn cut words in two): the page wraps them at
    spaces, which is why difflib's no-break spaces become plain ones."""
    table = difflib.HtmlDiff().make_table(
        left.system_prompt.splitlines(),
        right.system_prompt.splitlines(),
        fromdesc=f"v{left.number}",
        todesc=f"v{right.number}",
    )
    return DIFF_NAVIGATION.sub("", table).replace("&nbsp;", " ")


def reaction_counts(numbers: VersionStats) -> list[tuple[str, int]]:
    """The quick reactions a version got, by their names in the staff's language."""
    names = dict(Feedback.QuickReaction.choices)
    return [(str(names.get(code, code)), n) for code, n in numbers.reactions.items() if n]


def history_table(tutor: Tutor) -> str:
    """Every version, newest first, with its replies, mean rating and
    reactions, and links to compare or restore: three queries in all."""
    versions = list(tutor.versions.select_related("created_by").order_by("-number"))
    stats = tutor_version_stats(version_ids=[v.pk for v in versions])
    current = tutor.current_version_id
    current_number = tutor.current_version.number if tutor.current_version else 0
    compare = reverse("admin:tutoring_tutor_compare", args=[tutor.pk])

    def compare_link(version: TutorVersion) -> tuple[str, str]:
        # Against the current one; the current one against its predecessor.
        if version.pk != current:
            return f"{compare}?a={version.number}&b={current_number}", gettext("Compare with current")
        if version.number > 1:
            return f"{compare}?a={version.number - 1}&b={version.number}", gettext("Compare with previous")
        return "", ""

    def row(version: TutorVersion) -> tuple:
        numbers: VersionStats = stats[version.pk]
        restore = (
            gettext("current")
            if version.pk == current
            else format_html(
                '<a href="{}">{}</a>',
                reverse("admin:tutoring_tutor_restore", args=[tutor.pk, version.number]),
                gettext("Restore…"),
            )
        )
        reactions = ", ".join(f"{name}: {n}" for name, n in reaction_counts(numbers)) or "—"
        return (
            version.number,
            version.created_by.username if version.created_by else "—",
            date_format(timezone.localtime(version.created_at), "DATETIME_FORMAT"),  # the staff's zone
            version.note or "—",
            numbers.replies,
            numbers.rating_avg if numbers.rating_avg is not None else "—",
            ngettext("%(count)d rating", "%(count)d ratings", numbers.detailed_count)
            % {"count": numbers.detailed_count},
            reactions,
            *compare_link(version),
            restore,
        )

    rows = format_html_join(
        "",
        "<tr><td>v{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} ({})</td>"
        '<td>{}</td><td><a href="{}">{}</a></td><td>{}</td></tr>',  # an empty link is not shown
        (row(v) for v in versions),
    )
    headings = format_html_join(
        "",
        "<th>{}</th>",
        (
            (heading,)
            for heading in (
                gettext("Version"), gettext("By"), gettext("When"), gettext("What changed and why"),
                gettext("Replies"), gettext("Mean rating"), gettext("Reactions"), "", "",
            )
        ),
    )  # fmt: skip
    return format_html(
        '<table class="version-history"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>', headings, rows
    )


def try_it_panel(tutor: Tutor | None) -> str:
    """The panel's markup; tutoring/try_it.js sends it with the form's current content."""
    url = (
        reverse("admin:tutoring_tutor_try", args=[tutor.pk])
        if tutor
        else reverse("admin:tutoring_tutor_try_new")
    )
    saved = (
        gettext("Saved version v%(number)s") % {"number": tutor.current_version.number}
        if tutor and tutor.current_version
        else ""
    )
    return format_html(
        '<div class="try-it" data-url="{}" data-asking="{}" data-done="{}" data-failed="{}" '
        'data-no-answer="{}">'
        '<label for="try-it-question">{}</label>'
        '<textarea id="try-it-question" rows="3" maxlength="{}" placeholder="{}"></textarea>'
        '<p><button type="button" class="button try-it-send">{}</button> '
        '<span class="try-it-status" aria-live="polite"></span></p>'
        '<div class="try-it-answers">'
        '<section><h4>{}</h4><div class="try-it-draft"></div></section>'
        '<section{}><h4>{}</h4><div class="try-it-saved"></div></section>'
        "</div>"
        '<p class="help">{}</p></div>',
        url,
        gettext("Asking AI-Core…"),
        gettext("Done."),
        gettext("The request failed:"),
        gettext("AI-Core could not answer:"),
        gettext("A student's question"),
        QUESTION_MAX_CHARS,
        gettext("For example: explain how to solve quadratic equations"),
        gettext("Ask AI-Core"),
        gettext("With the prompt as edited (not saved)"),
        mark_safe("") if saved else mark_safe(' hidden=""'),
        saved,
        gettext(
            "Nothing is saved: no chat, message or feedback is created. "
            "Each try asks AI-Core, so tries are limited per editor."
        ),
    )


class TryItForm(forms.Form):
    question = forms.CharField(max_length=QUESTION_MAX_CHARS, strip=True)
    system_prompt = forms.CharField(required=False, strip=False)
    model_id = forms.CharField(max_length=200)
    knowledge_base_id = forms.CharField(max_length=200, required=False)
    teaching_mode = forms.ChoiceField(choices=TeachingMode.choices, required=False)


# The editor's words for the API's AI-Core errors (the API's own stay English).
AI_CORE_FAILURES = {
    "ai_core_error": gettext_lazy("AI-Core failed."),
    "ai_core_timeout": gettext_lazy("AI-Core did not answer in time."),
    "ai_core_unavailable": gettext_lazy("AI-Core is unavailable right now."),
    "ai_core_bad_response": gettext_lazy("AI-Core gave an invalid answer."),
}


def _answer(**kwargs) -> dict[str, str]:
    try:
        return {"content": preview_reply(**kwargs)}
    except AICoreError as exc:  # shown to the editor in words, never a stack trace
        words = str(AI_CORE_FAILURES.get(exc.code, AI_CORE_FAILURES["ai_core_error"]))
        if exc.detail != exc.default_detail:
            words = f"{words} ({exc.detail})"  # what AI-Core itself said, as it said it
        return {"error": words, "code": exc.code}


def version_urls(model_admin: "TutorAdmin") -> list:
    site = model_admin.admin_site

    def tutor_for(request: HttpRequest, pk: int, *, change: bool) -> Tutor:
        tutor = get_object_or_404(Tutor.objects.select_related("current_version"), pk=pk)
        allowed = (
            model_admin.has_change_permission(request, tutor)
            if change
            else model_admin.has_view_permission(request, tutor)
        )
        if not allowed:
            raise PermissionDenied
        return tutor

    def compare(request: HttpRequest, pk: int) -> HttpResponse:
        tutor = tutor_for(request, pk, change=False)
        versions = {v.number: v for v in tutor.versions.select_related("created_by")}
        if not versions:
            raise Http404(gettext("This tutor has no versions."))
        newest = max(versions)

        def pick(name: str, default: int) -> TutorVersion:
            try:
                return versions[int(request.GET.get(name, default))]
            except (ValueError, KeyError):
                raise Http404(gettext("No such version.")) from None

        left, right = pick("a", max(newest - 1, 1)), pick("b", newest)
        diff = prompt_diff(left, right)
        stats = tutor_version_stats(version_ids=[left.pk, right.pk])
        context = {
            **site.each_context(request),
            "title": f"{tutor.name}: v{left.number} ↔ v{right.number}",
            "opts": Tutor._meta,
            "original": tutor,
            "tutor": tutor,
            "numbers": sorted(versions, reverse=True),
            "sides": [(side, stats[side.pk], reaction_counts(stats[side.pk])) for side in (left, right)],
            "diff": diff,
            "same_prompt": left.system_prompt == right.system_prompt,
            "can_change": model_admin.has_change_permission(request, tutor),
        }
        return TemplateResponse(request, "admin/tutoring/tutor/compare.html", context)

    def restore(request: HttpRequest, pk: int, number: int) -> HttpResponse:
        tutor = tutor_for(request, pk, change=True)
        version = get_object_or_404(TutorVersion, tutor=tutor, number=number)
        change_url = reverse("admin:tutoring_tutor_change", args=[tutor.pk])
        if request.method == "POST":
            made = services.tutor_version_restore(tutor=tutor, number=number, by=request.user)
            if made is None:
                model_admin.message_user(
                    request,
                    gettext("v%(number)s is already the current content.") % {"number": number},
                    messages.INFO,
                )
            else:
                model_admin.message_user(
                    request,
                    gettext("Restored v%(number)s as the new current version v%(new)s.")
                    % {"number": number, "new": made.number},
                    messages.SUCCESS,
                )
            return HttpResponseRedirect(change_url)
        context = {
            **site.each_context(request),
            "title": gettext("Restore v%(number)s of %(tutor)s?") % {"number": number, "tutor": tutor.name},
            "opts": Tutor._meta,
            "original": tutor,
            "version": version,
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/tutoring/tutor/restore_confirm.html", context)

    @require_POST
    def try_it(request: HttpRequest, pk: int | None = None) -> JsonResponse:
        tutor = tutor_for(request, pk, change=True) if pk is not None else None
        if tutor is None and not model_admin.has_add_permission(request):
            raise PermissionDenied
        form = TryItForm(request.POST)
        if not form.is_valid():
            return JsonResponse({"errors": form.errors}, status=400)
        throttle = TryItThrottle()
        if not throttle.allow_request(request, None):
            wait = int(throttle.wait())
            return JsonResponse(
                {
                    "detail": ngettext(
                        "Too many tries. Try again in %(wait)d second.",
                        "Too many tries. Try again in %(wait)d seconds.",
                        wait,
                    )
                    % {"wait": wait},
                    "code": "throttled",
                },
                status=429,
                headers={"Retry-After": str(wait)},
            )
        data = form.cleaned_data
        draft = TutorContent(
            data["system_prompt"], data["model_id"], data["knowledge_base_id"], data["teaching_mode"]
        ).normalized()
        request_id = f"try-it-{uuid.uuid4().hex}"
        answers = {
            "draft": _answer(
                tutor_id=pk,
                version_number=None,
                content=draft,
                question=data["question"],
                request_id=request_id,
            )
        }
        if tutor is not None and tutor.current_version is not None:
            answers["saved"] = _answer(
                tutor_id=pk,
                version_number=tutor.current_version.number,
                content=tutor.current_version,
                question=data["question"],
                request_id=request_id,
            )
        return JsonResponse(answers)

    wrap = site.admin_view
    return [
        path("<int:pk>/versions/compare/", wrap(compare), name="tutoring_tutor_compare"),
        path("<int:pk>/versions/<int:number>/restore/", wrap(restore), name="tutoring_tutor_restore"),
        path("<int:pk>/try/", wrap(try_it), name="tutoring_tutor_try"),
        path("try/", wrap(try_it), name="tutoring_tutor_try_new"),
    ]
