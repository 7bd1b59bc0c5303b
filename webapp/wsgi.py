"""WSGI entry point for gunicorn: `gunicorn webapp.wsgi` (see gunicorn.conf.py)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings.dev")
application = get_wsgi_application()
