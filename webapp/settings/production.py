"""Production: every secret from the environment, HTTPS only, no anonymous API use unless asked for."""

from django.core.exceptions import ImproperlyConfigured

from webapp.settings.base import *  # noqa: F401,F403
from webapp.settings.env import env_bool, env_int, env_list, env_log_format, env_networks, env_str

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
DEBUG = False
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [])
if not ALLOWED_HOSTS:  # Django would answer every request, health checks included, 400
    raise ImproperlyConfigured("Set ALLOWED_HOSTS to the host names the service answers to, comma-separated.")
API_ALLOW_ANONYMOUS = env_bool("API_ALLOW_ANONYMOUS", False)

# X-Forwarded-Proto is believed only behind a trusted proxy (which must set it, overwriting the client's).
if TRUSTED_PROXY_COUNT > 0:  # noqa: F405
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
LANGUAGE_COOKIE_SECURE = True  # the page's language switcher, like the other cookies: HTTPS only
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True

# ---- operations ----
from webapp.logs import logging_config  # noqa: E402

LOG_FORMAT = env_log_format("json")
LOGGING = logging_config(LOG_FORMAT, LOG_LEVEL)  # noqa: F405
# Scrapers reach a host directly, not through the balancer: loopback only unless told otherwise.
METRICS_ALLOWED_NETWORKS = env_networks("METRICS_ALLOWED_NETWORKS", ["127.0.0.0/8", "::1/128"])
# Balancers' health checks, probes and scrapers reach each host directly over plain HTTP on the private network:
# they must see the real status, not a 301 that a Kubernetes probe counts as success.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
