from django.apps import AppConfig
from django.utils.translation import gettext_lazy


class WebappConfig(AppConfig):
    name = "webapp"
    verbose_name = gettext_lazy("Recognizer")
    default_auto_field = "django.db.models.BigAutoField"
