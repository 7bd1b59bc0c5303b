from django.contrib import admin
from django.urls import path

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
]

handler400 = "webapp.views.bad_request"
handler404 = "webapp.views.not_found"
handler500 = "webapp.views.server_error"
