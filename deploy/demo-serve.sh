#!/usr/bin/env bash
# The end of `make demo`: the 3-replica stack behind NGINX (`finsimples stack up`), then one
# forecast through NGINX. Where the stack cannot run (its system packages cannot be installed,
# or it fails to start), one replica serves instead (deploy/serve-local.sh), and this says why.
set -uo pipefail
cd "$(dirname "$0")/.."

fallback() {
  echo
  echo "*** $1"
  echo "*** serving ONE replica without NGINX instead (deploy/serve-local.sh)"
  exec ./deploy/serve-local.sh
}

./deploy/install-system-deps.sh \
  || fallback "could not install redis-server/nginx with apt-get (needs root or sudo)"
.venv/bin/finsimples stack up || fallback "finsimples stack up failed (its message is above)"

port=$(.venv/bin/python -c 'from finsimples.settings import Settings; print(Settings().stack.nginx_port)')
echo
echo "POST /v1/forecast through NGINX {\"ticker\": \"AAPL\", \"horizon_days\": 5, \"locale\": \"en\"}"
curl -fsS -D /dev/stderr "http://127.0.0.1:$port/v1/forecast" -H 'content-type: application/json' \
  -d '{"ticker": "AAPL", "horizon_days": 5, "locale": "en"}' 2> >(grep -i '^x-' >&2) \
  | .venv/bin/python -m json.tool
echo
echo "The stack keeps serving: finsimples stack status | logs; stop it with: make stop"
