# MiniStack, a local emulator of S3, SQS and DynamoDB, for compose.yaml's `distributed` profile.
# It publishes no official image: this one installs the release the test suite uses (scripts/bootstrap).
FROM python:3.11-slim
ARG MINISTACK_VERSION=1.5.33
RUN pip install --no-cache-dir --disable-pip-version-check "ministack==${MINISTACK_VERSION}"
# GATEWAY_PORT and BIND_HOST: where it listens. MINISTACK_HOST: the host in the URLs it hands out
# (SQS queue URLs), which must be the name other containers reach it by.
ENV GATEWAY_PORT=4566 \
    BIND_HOST=0.0.0.0 \
    MINISTACK_HOST=ministack
EXPOSE 4566
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:4566/_ministack/health', timeout=2)"]
CMD ["ministack"]
