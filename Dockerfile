# polyfarm's image: `polyfarm` as the entrypoint, `collect` by default (deploy/compose.yaml runs
# `serve` from the same image). Three stages:
#   1. dashboard: the React dashboard built once with Node (the runtime has no Node);
#   2. build:     polyfarm and its locked dependencies installed into /opt/polyfarm by
#                 deploy/install.sh (the script a test runs in a clean virtual environment);
#   3. runtime:   slim Python, the environment copied in, a non-root user.
# Build from the repository's root: docker build -t polyfarm .

FROM node:20.19-bookworm-slim AS dashboard
WORKDIR /src/dashboard
COPY dashboard/package.json dashboard/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY dashboard/ ./
# Vite writes into ../src/polyfarm/api/dashboard_build, as `make dashboard` does.
RUN npm run build

FROM python:3.11.11-slim-bookworm AS build
RUN pip install --no-cache-dir --disable-pip-version-check "uv==0.13.9"
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
COPY migrations/ migrations/
COPY src/ src/
COPY --from=dashboard /src/src/polyfarm/api/dashboard_build/ src/polyfarm/api/dashboard_build/
COPY deploy/install.sh deploy/install.sh
RUN UV=uv PYTHON=/usr/local/bin/python3 deploy/install.sh /opt/polyfarm

FROM python:3.11.11-slim-bookworm AS runtime
# A fixed uid/gid, so volumes and the host's backups directory can be given to it.
RUN groupadd --system --gid 10001 polyfarm \
    && useradd --system --uid 10001 --gid polyfarm --home-dir /var/lib/polyfarm \
        --create-home --shell /usr/sbin/nologin polyfarm
COPY --from=build /opt/polyfarm /opt/polyfarm
ENV PATH=/opt/polyfarm/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    POLYFARM_DATA_DIR=/var/lib/polyfarm \
    POLYFARM_LOG_JSON=true
USER 10001:10001
WORKDIR /var/lib/polyfarm
VOLUME ["/var/lib/polyfarm"]
# Healthy while every collector succeeded recently (`polyfarm status` exits 1 when one is
# stale); the start period covers the first metadata scan of the whole venue.
HEALTHCHECK --interval=60s --timeout=30s --start-period=15m --retries=3 \
    CMD ["polyfarm", "status"]
ENTRYPOINT ["polyfarm"]
CMD ["collect"]
