import django_filters

from .models import Feedback


class MLFeedbackFilter(django_filters.FilterSet):
    processed = django_filters.BooleanFilter(help_text="Default false: the unprocessed queue.")
    allow_training = django_filters.BooleanFilter()
    tutor = django_filters.NumberFilter(field_name="tutor_id")
    feedback_type = django_filters.ChoiceFilter(choices=Feedback.FeedbackType.choices)
    created_since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = Feedback
        fields = ["processed", "allow_training", "tutor", "feedback_type", "created_since"]

    def __init__(self, data=None, *args, **kwargs):
        # `processed` defaults to false: the ML team pulls what is still to do.
        if data is not None and "processed" not in data:
            data = data.copy()
            data["processed"] = "false"
        super().__init__(data, *args, **kwargs)
