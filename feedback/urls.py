from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("feedback", views.FeedbackViewSet, basename="feedback")
router.register("ml/feedback", views.MLFeedbackViewSet, basename="ml-feedback")
router.register("ml/tutors", views.MLTutorViewSet, basename="ml-tutors")
router.register("ml/experiments", views.ExperimentViewSet, basename="ml-experiments")
router.register("ml/preference-pairs", views.PreferencePairViewSet, basename="ml-preference-pairs")


urlpatterns = [
    *router.urls,
    path("ml/consent-revocations/", views.ConsentRevocationsView.as_view(), name="ml-consent-revocations"),
]
