"""Pure ML core of FinSimples: DataFrames in; models, forecasts, metrics and figures out.

Serving, in three calls (the same functions training used)::

    features = build_features(window)             # training.features; last MIN_HISTORY_DAYS rows
    quantiles = model.predict(latest_features(features))   # a QuantileForecaster
    prices = to_price_quantiles(quantiles, last_close)     # training.quantiles

No module here does I/O, reads the environment or does work at import time.
"""
