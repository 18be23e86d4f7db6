# syntax=docker/dockerfile:1
# Two stages: uv builds the virtualenv (locked, no dev tools, Baton installed as a wheel),
# the runtime image gets only that venv and runs as an unprivileged user.

FROM python:3.12-slim AS build
RUN pip install --no-cache-dir "uv==0.13.9"
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_NO_PROGRESS=1
WORKDIR /app
# Dependencies first: this layer is reused until uv.lock changes.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv uv sync --locked --no-dev --no-install-project
COPY settings.py log_context.py piccolo_conf.py ./
COPY cli ./cli
COPY server ./server
COPY actors ./actors
COPY inbox ./inbox
COPY tables ./tables
RUN --mount=type=cache,target=/root/.cache/uv uv sync --locked --no-dev --no-editable

FROM python:3.12-slim
RUN useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin baton
COPY --from=build /app/.venv /app/.venv
ENV PATH="/app/.venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    BATON_LOG_FORMAT=json \
    BATON_DATA_DIR=/tmp/baton
WORKDIR /tmp
USER baton
EXPOSE 8000
# uvicorn and Dramatiq both stop gracefully on SIGTERM (compose gives them stop_grace_period).
STOPSIGNAL SIGTERM
CMD ["baton", "serve", "--host", "0.0.0.0", "--port", "8000"]
