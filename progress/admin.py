from django.contrib import admin

from .models import Progress


@admin.register(Progress)
class ProgressAdmin(admin.ModelAdmin):
    list_display = ("user", "tutor", "total_minutes", "updated_at")
    list_filter = ("tutor", "tutor__course")
    list_select_related = ("user", "tutor")
    search_fields = ("user__email", "user__username", "tutor__name")
    raw_id_fields = ("user",)
    autocomplete_fields = ("tutor",)
    show_full_result_count = False
