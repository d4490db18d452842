from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from consult import views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/login/", views.PhoneLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password/",
        auth_views.PasswordChangeView.as_view(template_name="consult/password_change.html"),
        name="password_change",
    ),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(template_name="consult/password_change_done.html"),
        name="password_change_done",
    ),
    path("services/<slug:skill_code>/new/", views.case_new, name="case_new"),
    path("cases/", views.my_cases, name="my_cases"),
    path("cases/<str:reference>/", views.case_detail, name="case_detail"),
    path("cases/<str:reference>/documents/", views.document_upload, name="document_upload"),
    path(
        "cases/<str:reference>/documents/<int:document_id>/",
        views.document_download,
        name="document_download",
    ),
    path(
        "cases/<str:reference>/<str:action>/",
        views.case_action,
        name="case_action",
    ),
    path("work/", views.work_queue, name="work_queue"),
    path("work/take-next/", views.take_next, name="take_next"),
    path("work/on-duty/", views.set_on_duty, name="set_on_duty"),
    path("coordinator/", views.dashboard, name="dashboard"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]
