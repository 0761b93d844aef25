# The app image: web (gunicorn), worker and beat all run from it.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
# pg_dump/pg_restore for backups (client 15 matches the server), age for
# operators who decrypt a backup by hand.
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client-15 age \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml constraints.txt ./
COPY config ./config
COPY apps ./apps
RUN pip install -c constraints.txt .
COPY . .

# collectstatic needs settings to load, not real secrets: throwaway values,
# used for this one build step only.
RUN DJANGO_SECRET_KEY=build FIELD_ENCRYPTION_KEY=YnVpbGQtc3RlcC1vbmx5LW5vdC1hLXNlY3JldC1rZXk= \
    BLIND_INDEX_KEY=build PAYMENT_PIN_PEPPER=build \
    python manage.py collectstatic --no-input

RUN useradd --system --uid 10001 anfu && mkdir -p /app/var && chown anfu /app/var
USER anfu
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
