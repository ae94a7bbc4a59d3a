from django.urls import path

from . import views

urlpatterns = [
    path("register/", views.RegisterView.as_view(), name="auth-register"),
    path("login/", views.LoginView.as_view(), name="auth-login"),
    path("refresh/", views.RefreshView.as_view(), name="auth-refresh"),
    path("logout/", views.LogoutView.as_view(), name="auth-logout"),
    path("me/", views.MeView.as_view(), name="auth-me"),
    path("me/export/", views.ExportView.as_view(), name="auth-export"),
    path("me/usage/", views.UsageView.as_view(), name="auth-usage"),
    path("me/preferences/", views.PreferencesView.as_view(), name="auth-preferences"),
    path("change-password/", views.ChangePasswordView.as_view(), name="auth-change-password"),
]
