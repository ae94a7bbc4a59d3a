from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("progress", views.ProgressViewSet, basename="progress")

urlpatterns = router.urls
