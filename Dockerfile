# Dockyard: one image for every replica. Metadata goes to PostgreSQL (DOCKYARD_DATABASE_URL)
# or, without it, to SQLite under /data with the blobs.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    DOCKYARD_DATA_DIR=/data DOCKYARD_LISTEN=0.0.0.0:5000

WORKDIR /src
COPY pyproject.toml README.md ./
COPY . ./dockyard-src
RUN pip install --no-cache-dir ./dockyard-src && rm -rf /src/dockyard-src \
    && useradd --system --home /data --uid 10001 dockyard \
    && mkdir -p /data && chown dockyard /data

USER dockyard
VOLUME ["/data"]
EXPOSE 5000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:5000/healthz', timeout=2)" || exit 1
ENTRYPOINT ["dockyard"]
CMD ["serve"]
