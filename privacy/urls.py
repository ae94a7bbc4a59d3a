from django.urls import path

from . import views

# Under /api/v1/auth/, next to accounts.urls.
urlpatterns = [
    path("me/", views.AccountView.as_view(), name="auth-me"),
    path("me/export/", views.ExportView.as_view(), name="auth-export"),
]
