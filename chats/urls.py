from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("chats", views.ChatViewSet, basename="chat")

urlpatterns = router.urls
