from django.urls import path

from . import views

# Under /api/v1/auth/, next to accounts.urls.
urlpatterns = [path("me/usage/", views.UsageView.as_view(), name="auth-usage")]
