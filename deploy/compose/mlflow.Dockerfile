# The compose stack's MLflow server: the official images lack the Postgres driver, so this one
# pins the MLflow of uv.lock (the clients' version; tests/integration/deploy checks it) with
# boto3 for the MinIO artifact store and psycopg2 for the backend store.
FROM python:3.11-slim

RUN pip install --no-cache-dir mlflow==3.17.2 boto3==1.44.8 psycopg2-binary==2.9.10 \
    && useradd --uid 1036 --create-home mlflow

# The user made above, numeric as in the project's image (finsimples.Dockerfile says why).
USER 1036:1036
WORKDIR /home/mlflow
EXPOSE 5000
ENTRYPOINT ["mlflow", "server"]
