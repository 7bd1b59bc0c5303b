# syntax=docker/dockerfile:1
# Two images from one file:
#   full  (the default target): registers, compiles, trains, evaluates and serves; TensorFlow included.
#   serve (--target serve): serves versions the full image registered, from their ONNX Runtime / OpenVINO copies,
#         through a shared database and model store; no TensorFlow, Keras or converters.
# BASE_IMAGE: any Debian-like image with python3 (3.11), its venv module and useradd, e.g. python:3.11-slim or a
# Debian bookworm made offline with mmdebstrap (python3, python3-venv, passwd, ca-certificates).
# pip reads its index and CA bundle from build args (PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_FIND_LINKS, PIP_CERT).
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS python
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=webapp.settings.production VAR_DIR=/data STATIC_ROOT=/app/staticfiles \
    HOST=0.0.0.0 PORT=8000 RECOGNIZER_MODELS_DIR=/data/models
# Artifacts live beside the database in /data: the copies compiled at registration must outlive the container.
# The code and the virtualenv stay root-owned: the service writes only to /data.
# python3, not python: Debian's interpreter has no `python` name; the venv gives both from here on.
RUN python3 -m venv /venv && useradd --create-home --uid 10001 app && mkdir /data && chown app /data
WORKDIR /app
EXPOSE 8000
# Healthy = ready: the default model is loaded and warmed up, so this worker can answer predictions.
# start-period covers the first start of the full image, which builds, registers and compiles the default model.
HEALTHCHECK --interval=30s --timeout=5s --start-period=180s --retries=3 CMD ["python", "scripts/healthcheck.py"]

# Each target adds its packages on top of the serving ones, so no virtualenv is copied between stages.
FROM python AS serve-deps
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_FIND_LINKS
ARG PIP_CERT
COPY requirements.txt scripts/serve_requirements.py /tmp/requirements/
RUN --mount=type=cache,target=/root/.cache/pip \
    python /tmp/requirements/serve_requirements.py /tmp/requirements/requirements.txt > /tmp/requirements/serve.txt \
 && pip install -r /tmp/requirements/serve.txt

FROM serve-deps AS full-deps
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_FIND_LINKS
ARG PIP_CERT
RUN --mount=type=cache,target=/root/.cache/pip pip install -r /tmp/requirements/requirements.txt

# The project and its static files; collectstatic here also proves the web app loads without TensorFlow.
FROM serve-deps AS app
COPY . .
# The Chinese messages, compiled from locale/*.po with Babel (no GNU gettext in the image).
RUN python scripts/compile_messages.py
RUN DJANGO_SETTINGS_MODULE=webapp.settings.dev VAR_DIR=/tmp/var python manage.py collectstatic --noinput -v 0

FROM serve-deps AS serve
COPY --from=app /app /app
USER app
# No default model here: the full image (or `manage.py register_model` in it) registers versions.
CMD ["sh", "-c", "python manage.py migrate --noinput && exec gunicorn -c gunicorn.conf.py"]

FROM full-deps AS full
COPY --from=app /app /app
USER app
# Migrate; build the default model offline from the installed weights and register it if the database has none; serve.
CMD ["sh", "-c", "python manage.py migrate --noinput && python manage.py ensure_default_model && exec gunicorn -c gunicorn.conf.py"]
