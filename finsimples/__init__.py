"""FinSimples core: settings, the Delta price lake, ingest, calendars, tickers and forecasts.

Imports only `training` and `config` of the project (the layers: README, "Layout")."""

__version__ = "0.1.0"
