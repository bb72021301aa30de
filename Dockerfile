# syntax=docker/dockerfile:1
# driftradar image: `driftradar run` by default; the same image runs `simulate` and
# `retrain-worker`. Multi-stage: the build stage installs the project into a virtualenv,
# the runtime stage copies only that virtualenv and runs as an unprivileged user.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/driftradar
COPY pyproject.toml README.md ./
COPY detectors ./detectors
COPY streams ./streams
COPY producers ./producers
RUN /opt/driftradar/bin/pip install --no-cache-dir .

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="driftradar" \
      org.opencontainers.image.description="Kafka-native, real-time monitor for ML models" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 driftradar \
    && useradd --system --uid 10001 --gid driftradar --create-home \
       --home-dir /home/driftradar --shell /usr/sbin/nologin driftradar
COPY --from=build /opt/driftradar /opt/driftradar
ENV PATH=/opt/driftradar/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DRIFTRADAR_METRICS_PORT=9108
WORKDIR /home/driftradar
USER 10001:10001
EXPOSE 9108
# /healthz: the process answers and its consumer loop is not stuck (streams/metrics/health.py).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-m", "streams.metrics.probe", "/healthz"]
ENTRYPOINT ["driftradar"]
CMD ["run"]
