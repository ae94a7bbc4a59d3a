import django_filters

from tutor_platform.filters import BooleanFilter, ChoiceFilter, IsoDateTimeFilter, NumberFilter
from tutoring.models import Experiment

from .models import ConsentRevocation, Feedback


class MLFeedbackFilter(django_filters.FilterSet):
    processed = BooleanFilter(help_text="Default false: the queue still to process.")
    allow_training = BooleanFilter()
    tutor = NumberFilter(field_name="tutor_id")
    tutor_version = NumberFilter(
        field_name="tutor_version__number", help_text="A version number; use it with `tutor`."
    )
    feedback_type = django_filters.ChoiceFilter(choices=Feedback.FeedbackType.choices)
    created_since = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = Feedback
        fields = ["processed", "allow_training", "tutor", "tutor_version", "feedback_type", "created_since"]

    def __init__(self, data=None, *args, **kwargs):
        # `processed` defaults to false: the ML team pulls what is still to do.
        if data is not None and "processed" not in data:
            data = data.copy()
            data["processed"] = "false"
        super().__init__(data, *args, **kwargs)


class ConsentRevocationFilter(django_filters.FilterSet):
    since = IsoDateTimeFilter(
        field_name="revoked_at", lookup_expr="gte", help_text="Only revocations at or after this moment."
    )

    class Meta:
        model = ConsentRevocation
        fields = ["since"]


class ExperimentFilter(django_filters.FilterSet):
    tutor = NumberFilter(field_name="tutor_id")
    state = ChoiceFilter(choices=Experiment.State.choices)

    class Meta:
        model = Experiment
        fields = ["tutor", "state"]
