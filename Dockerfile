# relay-manager: one image for the web process (gunicorn) and the workers (run_workers).
#   docker build -t relay-manager .
#   docker compose up            (docs/deployment.md)

# --- build: dependencies, compiled catalogs, collected static files -----------------------------
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
WORKDIR /app
RUN python -m venv /opt/venv
# Dependencies first, from pyproject.toml alone, so a code change reuses this layer.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt
COPY . .
# Throw-away values: collectstatic refuses to start without them when DEBUG is off.
RUN pip install --no-deps -e . \
    && python -m relay_project.compilemessages \
    && DEBUG=0 SECRET_KEY=build-only RELAY_ENCRYPTION_KEY=build-only RELAY_VAR_DIR=/app/var \
       python manage.py collectstatic --noinput --verbosity 0

# --- runtime: slim, non-root ---------------------------------------------------------------------
FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=relay_project.settings \
    RELAY_VAR_DIR=/app/var \
    RELAY_WEB_BIND=0.0.0.0:8000
RUN groupadd --system --gid 10001 relay \
    && useradd --system --uid 10001 --gid relay --home-dir /app --no-create-home relay
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=relay:relay /app /app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
# Web by default; the workers run the same image with: python manage.py run_workers
CMD ["gunicorn", "-c", "python:relay_project.gunicorn_conf", "relay_project.wsgi"]
