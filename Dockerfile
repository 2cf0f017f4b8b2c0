# The worker image of compose.yaml: diracmq (with the PostgreSQL driver) on Python 3.11.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml setup.py README.md ./
COPY broker ./broker
COPY client ./client
COPY workers ./workers
COPY webapp ./webapp
COPY DIRAC ./DIRAC
RUN pip install --no-cache-dir ".[postgres]" && rm -rf /app/build

# A worker needs no privileges (its home holds ~/.dirac, e.g. the default SQLite JobDB).
RUN useradd --create-home --uid 1000 dirac \
    && mkdir -p /data/sandboxes /data/dms \
    && chown dirac /data/sandboxes /data/dms  # compose's sandboxes and storage volumes
USER dirac
CMD ["dirac-worker", "WorkloadManagement"]
