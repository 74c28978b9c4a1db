-- Runs once, when the postgres volume is first initialised: the Prefect server's database
-- beside MLflow's (POSTGRES_DB=mlflow), owned by the same user.
CREATE DATABASE prefect;
