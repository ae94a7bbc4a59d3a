from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("attachments", views.AttachmentViewSet, basename="attachment")

urlpatterns = router.urls
