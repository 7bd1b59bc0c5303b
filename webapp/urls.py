from django.contrib import admin
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog

from webapp import feedback_views, views
from webapp.api import api
from webapp.metrics import metrics_view

urlpatterns = [
    path("", views.index, name="index"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("predictions/<int:prediction_id>/feedback", feedback_views.feedback_page, name="feedback"),
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),  # set_language: the page's language switcher
    path("jsi18n/", JavaScriptCatalog.as_view(packages=["webapp"]), name="javascript-catalog"),
]

handler400 = "webapp.views.bad_request"
handler404 = "webapp.views.not_found"
handler500 = "webapp.views.server_error"
