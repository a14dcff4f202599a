# LFUSYS in one image: the Python service and the web app it serves.
#
#   docker build -t lfusys .
#   docker run -p 8000:8000 -v lfusys-data:/data lfusys
#
# Three stages, so the final image carries no compiler, Node.js or uv: only Python, the service's
# virtualenv and the built web app. scripts/check-image builds and checks it without a Docker engine.

# --- web: the React app, built by Vite into web/dist -------------------------------------------
FROM node:20-bookworm-slim AS web
WORKDIR /src/web
# The lockfile first: the `npm ci` layer is reused until the dependencies change.
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY web/ ./
RUN npm run build

# --- build: the service and its locked dependencies in a virtualenv at /opt/lfusys --------------
FROM python:3.11-slim-bookworm AS build
# The uv that scripts/bootstrap pins, in a virtualenv of its own (left behind in this stage).
ARG UV_VERSION=0.13.9
RUN python3 -m venv /opt/uv && /opt/uv/bin/pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}"
# Use the image's python3 (never download one), put the environment where the final stage copies it
# from, copy files into it (no links into uv's cache), and compile bytecode once, here.
ENV UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON_PREFERENCE=only-system \
    UV_PROJECT_ENVIRONMENT=/opt/lfusys \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    UV_NO_CACHE=1
WORKDIR /src
# Dependencies first, from uv.lock exactly (--frozen), without the dev group: this layer is reused
# until the lockfile changes.
COPY pyproject.toml uv.lock ./
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-install-project
# Then the service itself, built as a wheel and installed (not as an editable link to /src).
COPY README.md ./
COPY migrations/ migrations/
COPY src/ src/
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-editable

# --- the image that runs -------------------------------------------------------------------------
FROM python:3.11-slim-bookworm

LABEL org.opencontainers.image.title="LFUSYS" \
      org.opencontainers.image.description="Self-hostable service for uploading very large files in parallel, checked, resumable chunks" \
      org.opencontainers.image.version="0.1.0"

# A fixed, unprivileged user (uid/gid 10001) that owns the data volume and nothing else.
RUN groupadd --gid 10001 lfusys \
    && useradd --uid 10001 --gid lfusys --no-create-home --no-log-init --home-dir /nonexistent \
        --shell /usr/sbin/nologin lfusys \
    && mkdir -p /data \
    && chown lfusys:lfusys /data \
    && chmod 0700 /data

COPY --from=build /opt/lfusys /opt/lfusys
# The installed package cannot find web/dist next to a source checkout: LFUSYS_WEB_DIR says where it is.
COPY --from=web /src/web/dist /opt/lfusys-web

# PYTHONDONTWRITEBYTECODE: the bytecode was compiled at build time, and the code is read-only to the user.
ENV PATH=/opt/lfusys/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LFUSYS_DATA_DIR=/data \
    LFUSYS_WEB_DIR=/opt/lfusys-web

# The embedded backend keeps everything (SQLite, secrets, file bytes) here: keep it on a volume.
VOLUME /data
USER lfusys:lfusys
WORKDIR /data
EXPOSE 8000

# The slim image has no curl: ask /health/live with Python's urllib (on LFUSYS_PORT if it was changed).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('LFUSYS_PORT', '8000'), timeout=4)"]

ENTRYPOINT ["lfusys"]
CMD ["serve", "--host", "0.0.0.0"]
