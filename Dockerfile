# The API's production image (the last stage, `api`, what `docker build .` makes): the runtime
# dependencies only (requirements.txt, locked with hashes), run as an unprivileged user, with a
# health check. docker-compose.yml builds it for its backend, and the `local` stage for the local
# stack's other services; ./bin/dev needs no Docker.
FROM python:3.11-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir --require-hashes -r requirements.txt \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin cruddur


FROM runtime AS local
# docker-compose.yml's local AWS (moto's server: Cognito), setup and stream worker: the runtime
# plus the local stack, as ./bin/dev has them (requirements-dev.txt). Never deployed.
COPY requirements-dev.txt .
RUN pip install --no-cache-dir --require-hashes -r requirements-dev.txt \
    && mkdir -p /var/lib/cruddur && chown cruddur /var/lib/cruddur
COPY . .
# named volumes mounted here start out owned by cruddur (state of moto, the worker's checkpoint)
VOLUME /var/lib/cruddur
USER cruddur


FROM runtime AS api
COPY . .

USER cruddur
EXPOSE 4567
# The API's own health check (PostgreSQL reachable), with the interpreter the image already has.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:4567/api/health-check', timeout=2).status != 200)"]
# gunicorn.conf.py: gevent workers (a client that sends slowly, or stalls half-way, holds a greenlet,
# not a thread), and JSON errors for the requests gunicorn itself refuses.
CMD ["gunicorn", "--config", "gunicorn.conf.py", "--bind", "0.0.0.0:4567", "app:create_app()"]
