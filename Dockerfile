# syntax=docker/dockerfile:1
# Timedify production image (SPEC D1).
#   build:   the locked production dependencies + the package (not editable) into /opt/venv
#   runtime: slim Python, /opt/venv copied over and byte-compiled, non-root user 10001, no compiler,
#            no pip cache, no dev tools; /app/tmp is the only writable path (a volume).
# Runs unchanged with a read-only root filesystem:
#   docker run --read-only -v timedify-tmp:/app/tmp -p 8080:8080 --env-file .env timedify
# tests/deploy/test_readonly_runtime.py runs the same ENV/USER/VOLUME/CMD/HEALTHCHECK under
# bubblewrap, because the CI machines have no Docker engine.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# A venv without pip/setuptools: the base image's pip installs into it (pip --python), so the
# runtime venv holds exactly requirements/prod.txt + timedify.
RUN python -m venv --without-pip /opt/venv
# Dependencies first (their own layer: re-used while only the code changes).
COPY requirements/prod.txt requirements/prod.txt
RUN pip --python /opt/venv/bin/python install --no-cache-dir -r requirements/prod.txt
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip --python /opt/venv/bin/python install --no-cache-dir --no-deps .

FROM python:3.11-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="timedify" \
      org.opencontainers.image.description="Timedify webhook service and operations toolkit"
# TMPDIR too: anything using tempfile writes to the volume, never to the read-only root.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TMP_DIR=/app/tmp \
    TMPDIR=/app/tmp \
    HOME=/app/tmp \
    HOST=0.0.0.0 \
    PORT=8080 \
    ENVIRONMENT=production \
    LOG_FORMAT=json
COPY --from=build /opt/venv /opt/venv
# Byte-compile once at build time (as root): the read-only runtime cannot write __pycache__.
RUN python -m compileall -q -j 0 /opt/venv/lib \
    && groupadd --system --gid 10001 timedify \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app/tmp --no-create-home \
       --shell /usr/sbin/nologin timedify \
    && mkdir -p /app/tmp \
    && chown 10001:10001 /app/tmp \
    && chmod 0700 /app/tmp
WORKDIR /app
# The only writable path: SQLite default, optional log file, backups, temp files.
VOLUME ["/app/tmp"]
USER 10001:10001
EXPOSE 8080
# No curl in slim: the standard library probes /health (200 pass/warn, 503 fail -> unhealthy).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8080') + '/health', timeout=2)"]
CMD ["timedify", "serve"]
