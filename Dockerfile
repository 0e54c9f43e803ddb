# copilot-cli-proxy with the pinned copilot and claude CLIs (package-lock.json).
#
#   docker build -t copilot-cli-proxy .
#   docker compose up -d        (compose.yaml: the server, redis, and a one-shot login)
#
# Three stages: npm installs the CLIs, pip builds a venv with the runtime dependencies
# only, and the final image gets node (the copilot CLI's loader is a node script), the
# CLIs and the venv, and nothing that built them.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS clis
WORKDIR /app
COPY package.json package-lock.json ./
# claude-code's postinstall puts its native binary in place, so scripts must run.
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error

FROM ${PYTHON_IMAGE} AS venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY copilot_cli_proxy ./copilot_cli_proxy
COPY chat_client ./chat_client
RUN python -m venv /app/.venv \
    && /app/.venv/bin/pip install --no-cache-dir --no-compile .

FROM ${PYTHON_IMAGE}
# Both stages are bookworm: the node binary finds the same glibc and libstdc++ here.
COPY --from=clis /usr/local/bin/node /usr/local/bin/node
COPY --from=clis /app/node_modules /app/node_modules
COPY --from=venv /app/.venv /app/.venv
# A fixed uid, so a volume's files keep their owner when the image is rebuilt.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/proxy \
        --shell /usr/sbin/nologin proxy \
    && install -d -o proxy -g proxy /var/log/copilot-cli-proxy \
    && node --version \
    && /app/node_modules/.bin/claude --version
# HOST=0.0.0.0 is needed to publish the port; the server then refuses to start without
# API_KEY (or ALLOW_UNAUTHENTICATED=true), which compose.yaml passes from .env.
# Console logs go to stderr, which the container runtime collects; the file logs and
# the per-request JSON logs go to LOG_DIR.
ENV PATH=/app/.venv/bin:/app/node_modules/.bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=3456 \
    LOG_DIR=/var/log/copilot-cli-proxy \
    TEMP_DIR_BASE=/tmp/copilot-cli-proxy
USER 10001:10001
WORKDIR /home/proxy
# The CLIs' logins and state live in HOME: ~/.copilot, ~/.cache/copilot (the unpacked
# CLI, 4-5 s to redo), ~/.claude and ~/.claude.json. A volume keeps them across
# containers, and `copilot-cli-proxy login` in one container logs in the others.
VOLUME ["/home/proxy"]
EXPOSE 3456
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '3456') + '/health', timeout=4)"]
# SIGTERM drains: requests get 5 s, then their CLIs are stopped and temp dirs removed
# (up to 10 s more). compose.yaml gives it stop_grace_period: 30s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["copilot-cli-proxy"]
CMD ["serve"]
