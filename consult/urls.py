from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from accounts import views as account_views
from consult import display, health, metrics, public_views, views
from staff.admin_site import VerifiedAdminSite

# The admin only for staff who proved their second factor (staff/middleware.py sends them to it).
admin.site.__class__ = VerifiedAdminSite

# Translated, and a 503 when the exception was an outage; renders without the database.
handler500 = "consult.outage.server_error"

urlpatterns = [
    path("", views.home, name="home"),
    # For the load balancer and Prometheus (consult/health.py, consult/metrics.py).
    path("health/live", health.live, name="health_live"),
    path("health/ready", health.ready, name="health_ready"),
    path("metrics", metrics.metrics, name="metrics"),
    path("accounts/signup/", account_views.signup, name="signup"),
    path("accounts/login/", account_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password/",
        account_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(template_name="consult/password_change_done.html"),
        name="password_change_done",
    ),
    path("accounts/", include("accounts.urls")),
    path("accounts/2fa/", include("staff.urls")),
    path("services/<slug:skill_code>/new/", views.case_new, name="case_new"),
    path("cases/", views.my_cases, name="my_cases"),
    path("cases/<str:reference>/", views.case_detail, name="case_detail"),
    path("cases/<str:reference>/messages/", views.chat_history, name="chat_history"),
    path("cases/<str:reference>/documents/", views.document_upload, name="document_upload"),
    path("cases/<str:reference>/voice/", views.voice_upload, name="voice_upload"),
    path("cases/<str:reference>/details/", views.case_details_edit, name="case_details_edit"),
    path(
        "cases/<str:reference>/documents/<int:document_id>/",
        views.document_download,
        name="document_download",
    ),
    # Only the actions' own names, so no other page under a case is ever answered by this view.
    re_path(
        r"^cases/(?P<reference>[^/]+)/(?P<action>accept|decline|resolve|close|withdraw|reopen|reassign)/$",
        views.case_action,
        name="case_action",
    ),
    path("work/", views.work_queue, name="work_queue"),
    path("work/take-next/", views.take_next, name="take_next"),
    path("work/on-duty/", views.set_on_duty, name="set_on_duty"),
    path("coordinator/", views.dashboard, name="dashboard"),
    path("coordinator/report/", public_views.report, name="report"),
    path("coordinator/report.csv", public_views.report_csv, name="report_csv"),
    path("coordinator/posters/", public_views.posters, name="posters"),
    path("coordinator/posters/<int:poster_id>.pdf", public_views.poster_pdf, name="poster_pdf"),
    path("track/", public_views.track, name="track"),
    path("figures/", public_views.public_figures, name="figures"),
    path("cases/<str:reference>/receipt/", public_views.receipt, name="receipt"),
    path("cases/<str:reference>/rating/", public_views.rate, name="rate"),
    path("verify/<str:code>/", views.verify_document, name="verify_document"),
    path("cases/<str:reference>/summary/", views.summary_request, name="summary_request"),
    path("", include("notices.urls")),
    path("privacy/", include("privacy.urls")),
    path("medical/", include("medical.urls")),
    path("legal/", include("legal.urls")),
    path("i18n/setlang/", views.set_language, name="set_language"),
    path("display/", display.set_display, name="set_display"),
    path("api/v1/", include("consult.api.urls")),
    path("admin/", admin.site.urls),
]
