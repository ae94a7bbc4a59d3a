from django.urls import path

from . import views

# /auth/me/ (profile and erasure) and /auth/me/export/ are privacy.urls, /auth/me/usage/ usage.urls.
urlpatterns = [
    path("register/", views.RegisterView.as_view(), name="auth-register"),
    path("login/", views.LoginView.as_view(), name="auth-login"),
    path("refresh/", views.RefreshView.as_view(), name="auth-refresh"),
    path("logout/", views.LogoutView.as_view(), name="auth-logout"),
    path("me/preferences/", views.PreferencesView.as_view(), name="auth-preferences"),
    path("change-password/", views.ChangePasswordView.as_view(), name="auth-change-password"),
]
