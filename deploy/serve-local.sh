#!/usr/bin/env bash
# Serve the forecast API locally (one replica) in the background and fetch one forecast over HTTP.
# Used by `make demo`; `make stop` ends the server. State lives under .finsimples/.
set -euo pipefail
cd "$(dirname "$0")/.."

state=${FINSIMPLES_STATE_DIR:-.finsimples}
port=${PORT:-3000}
export BENTOML_HOME=${BENTOML_HOME:-$state/bentoml}
export BENTOML_DO_NOT_TRACK=true
# XGBoost's OpenMP threads sleep between predictions instead of spinning (as in bentofile.yaml).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
pidfile=$state/serve.pid
log=$state/serve.log

if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "stopping the previous server (pid $(cat "$pidfile"))"
  kill "$(cat "$pidfile")"; sleep 2
fi

# @champion -> BentoML model store, plus the fallback snapshot the service starts with.
.venv/bin/python -m bentos.package --prepare
nohup .venv/bin/bentoml serve bentos.service:ForecastService --host 127.0.0.1 --port "$port" \
  >"$log" 2>&1 &
echo $! >"$pidfile"

echo "waiting for http://127.0.0.1:$port (bentoml serve takes ~10-30 s to answer) ..."
for _ in $(seq 1 120); do
  if curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "the server exited; its log:"; tail -n 40 "$log"; exit 1
  fi
  sleep 1
done

echo "POST /v1/forecast {\"ticker\": \"AAPL\", \"horizon_days\": 5, \"locale\": \"en\"}"
curl -fsS "http://127.0.0.1:$port/v1/forecast" -H 'content-type: application/json' \
  -d '{"ticker": "AAPL", "horizon_days": 5, "locale": "en"}' \
  | .venv/bin/python -m json.tool
echo
echo "The API is serving on http://127.0.0.1:$port (docs: /docs, metrics: /metrics; log: $log)."
echo "Stop it with: make stop"
