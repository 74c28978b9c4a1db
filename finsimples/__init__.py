"""FinSimples core: settings, the Parquet price lake, ingest and the CLI."""

__version__ = "0.1.0"
