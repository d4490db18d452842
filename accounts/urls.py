from __future__ import annotations

from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("signup/code/", views.signup_code, name="signup_code"),
    path("login/code/", views.login_code, name="login_code"),
    path("password/reset/", views.reset, name="reset"),
    path("password/reset/code/", views.reset_code, name="reset_code"),
    path("phone/", views.phone, name="phone"),
    path("phone/code/", views.phone_code, name="phone_code"),
    path("logout/everywhere/", views.logout_everywhere, name="logout_everywhere"),
    path("lockouts/", views.lockouts, name="lockouts"),
]
