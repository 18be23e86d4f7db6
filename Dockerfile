# Two stages: uv builds the virtualenv (locked; the runtime dependencies only: no dev tools,
# no embedded Postgres or Redis, which production never runs; Baton installed as a wheel),
# the runtime image gets only that venv and runs as an unprivileged user.
#
# BASE: any Debian-like image with python3 (3.11 or later), its venv module and
# ca-certificates. deploy/test-image.sh builds one from Debian's packages where Docker Hub
# is out of reach (and checks the image: docs/operations.md).
ARG BASE=python:3.12-slim

FROM ${BASE} AS build
# A build behind a TLS-inspecting proxy passes that proxy's CA bundle as the optional build
# secret `ca_bundle` (`--secret id=ca_bundle,src=/etc/ssl/certs/ca-certificates.crt`): it is
# mounted over the image's bundle for the RUN steps that reach PyPI, and never stored.
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_NO_PROGRESS=1
# Another index for uv's own wheel, when the builder's pip uses one (unset: PyPI). Baton's
# dependencies come from the URLs that uv.lock names.
ARG PIP_INDEX_URL
WORKDIR /app
# uv in a venv of its own: a Debian python3 refuses a system-wide pip install (PEP 668).
RUN --mount=type=secret,id=ca_bundle,target=/etc/ssl/certs/ca-certificates.crt \
    python3 -m venv /opt/uv \
    && /opt/uv/bin/pip install --no-cache-dir --disable-pip-version-check "uv==0.13.9"
# Dependencies first: this layer is reused until uv.lock changes.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=secret,id=ca_bundle,target=/etc/ssl/certs/ca-certificates.crt \
    /opt/uv/bin/uv sync --locked --no-default-groups --no-install-project
# The sources in one layer (.dockerignore leaves out tests, docs, bench); the wheel takes
# only the packages that pyproject.toml lists.
COPY . ./
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=secret,id=ca_bundle,target=/etc/ssl/certs/ca-certificates.crt \
    /opt/uv/bin/uv sync --locked --no-default-groups --no-editable

FROM ${BASE}
WORKDIR /tmp
# BATON_DATA_DIR (caught e-mail when SMTP_URL is unset) belongs to the user, so a volume
# mounted there starts out writable by it.
RUN useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin baton \
    && install -d -o baton -g baton -m 0700 /tmp/baton
COPY --from=build /app/.venv /app/.venv
ENV PATH="/app/.venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    BATON_LOG_FORMAT=json \
    BATON_DATA_DIR=/tmp/baton
USER baton
EXPOSE 8000
# uvicorn and Dramatiq both stop gracefully on SIGTERM (compose gives them stop_grace_period).
STOPSIGNAL SIGTERM
CMD ["baton", "serve", "--host", "0.0.0.0", "--port", "8000"]
