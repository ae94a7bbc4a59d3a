from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("courses", views.CourseViewSet, basename="course")
router.register("tutors", views.TutorViewSet, basename="tutor")

urlpatterns = router.urls
