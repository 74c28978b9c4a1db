# The project's image: the CLI, the flows and the Prefect worker of deploy/compose.yaml.
# (The forecast API's image is the bento's, from `bentoml containerize`.) Built from the
# repository root:  docker build -f deploy/compose/finsimples.Dockerfile -t finsimples .
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    OMP_WAIT_POLICY=PASSIVE \
    PREFECT_SERVER_ANALYTICS_ENABLED=false

# The state folder exists in the image, owned by the user: a named volume mounted there starts
# with that owner (an absent path would be created root-owned).
RUN pip install --no-cache-dir uv==0.13.9 \
    && useradd --uid 1035 --create-home finsimples \
    && install -d -o finsimples -g finsimples /home/finsimples/state

WORKDIR /app
# Dependencies first (from the lock, without the dev extra), so code changes reuse this layer.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-install-project
# Only the packages and the deployment file: no data, state, tests or .env reach the image.
# (the wheel's packages: pyproject.toml, [tool.hatch.build.targets.wheel])
COPY config/ config/
COPY training/ training/
COPY finsimples/ finsimples/
COPY registry/ registry/
COPY monitoring/ monitoring/
COPY jobs/ jobs/
COPY bentos/ bentos/
COPY deploy/ deploy/
COPY loadtest/ loadtest/
COPY flows/ flows/
COPY cli/ cli/
COPY prefect.yaml bentofile.yaml ./
RUN uv sync --frozen

# Numeric (the user made above): Kubernetes' runAsNonRoot (the flow jobs' template) can only
# verify a numeric user, and refuses to start an image whose USER is a name.
USER 1035:1035
# prefect.yaml's pull step works in $FINSIMPLES_HOME.
ENV PATH=/app/.venv/bin:$PATH \
    FINSIMPLES_HOME=/app \
    FINSIMPLES_STATE_DIR=/home/finsimples/state
CMD ["finsimples", "--help"]
