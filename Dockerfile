# One image for the operator and every bot runtime: `slsbot operator ...` and `slsbot runtime --config ...`.
#   docker build -t ghcr.io/slsbot/runtime:0.1.0 .
# The tag is the API's default Strategy.spec.runtime.image, and deploy/operator runs the same image.

FROM python:3.11-slim AS build
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install --no-cache-dir "uv>=0.5,<1"
WORKDIR /app
# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY operator ./operator
COPY botruntime ./botruntime
RUN uv sync --frozen --no-dev --no-editable

FROM python:3.11-slim
# restic for the BackupSchedule CronJobs (slsbot backup run), Debian's package
RUN apt-get update && apt-get install -y --no-install-recommends restic ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 10001 slsbot && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin slsbot
WORKDIR /app
COPY --from=build /app/.venv /app/.venv
# Recorded candles for replay strategies without marketData.dataDir (the operator's default data dir).
COPY data/market ./data/market
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
ENTRYPOINT ["slsbot"]
CMD ["--help"]
