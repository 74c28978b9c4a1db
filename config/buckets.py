"""The buckets of the replicas' request-latency histogram (BentoML's, configured by the service).

BentoML's default buckets plus 3 s: the latency SLO (``config.monitoring.SloConfig``, p95 <= 3 s)
counts good requests with the ``le="3.0"`` bucket itself rather than an interpolation between
2.5 and 5 s. ``monitoring.slo`` refuses an SLO threshold that is not one of these bounds. Kept
in a module of its own, free of imports, because ``bentos.service`` needs it at import time.
"""

LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    3.0,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    180.0,
)
"""Upper bounds in seconds; BentoML adds +Inf."""
