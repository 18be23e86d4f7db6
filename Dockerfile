FROM python:3.12-slim
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project
COPY . .
RUN uv sync --locked --no-dev && useradd --system --uid 10001 baton
USER baton
ENV PATH="/app/.venv/bin:$PATH"
EXPOSE 8000
CMD ["baton", "serve", "--host", "0.0.0.0", "--port", "8000"]
