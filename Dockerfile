# syntax=docker/dockerfile:1
#
# Tailor: one image for every role.
#
#   docker build -t tailor .
#   docker run --rm -p 8080:8080 -e TAILOR_KAFKA_BOOTSTRAP=... -e TAILOR_REDIS_URL=... tailor        # api (default)
#   docker run --rm -e TAILOR_KAFKA_BOOTSTRAP=... -e TAILOR_REDIS_URL=... tailor worker
#   docker run --rm tailor simulate --api http://api:8080
#
# The image holds neither Java/Kafka nor redis-server, so it never starts the embedded
# local stack: always point TAILOR_KAFKA_BOOTSTRAP and TAILOR_REDIS_URL at real servers
# (compose.yaml does).

# --- builder: build the project's wheel and install it with its dependencies into /opt/venv ---
FROM python:3.11-slim-bookworm AS builder

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

WORKDIR /src
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY models ./models
COPY config ./config

# A non-editable install of the project's wheel plus its runtime dependencies only (no dev
# extra), then a check that the package data and the `tailor` script made it in. Every
# dependency ships manylinux wheels for CPython 3.11 on amd64: no compiler, no apt packages.
RUN pip install --no-cache-dir . \
    && tailor_site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
    && test -f "$tailor_site/config/kafka/pom.xml" \
    && test -x /opt/venv/bin/tailor

# --- runtime: the venv and a non-root user, nothing else ---
FROM python:3.11-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="tailor" \
      org.opencontainers.image.description="Streaming real-time personalization: Kafka + Faust + River + Redis next-best offers" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    TAILOR_API_HOST=0.0.0.0 \
    TAILOR_API_PORT=8080 \
    TAILOR_WORKER_WEB_PORT=6066 \
    TAILOR_WORKER_WEB_BIND=0.0.0.0 \
    TAILOR_STATE_DIR=/app/.tailor

RUN groupadd --system --gid 10001 tailor \
    && useradd --system --no-log-init --uid 10001 --gid tailor \
        --home-dir /app --create-home --shell /usr/sbin/nologin tailor

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
USER 10001:10001

# 8080: HTTP API (`tailor api`); 6066: worker /metrics and /ready (`tailor worker`).
EXPOSE 8080 6066

# Checks the api role, the default command. The worker serves no /healthz: compose.yaml
# overrides this check for the worker service with one against :6066/metrics.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('TAILOR_API_PORT', '8080') + '/healthz', timeout=4)"]

ENTRYPOINT ["tailor"]
CMD ["api"]
