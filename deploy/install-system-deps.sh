#!/usr/bin/env bash
# Installs the servers the stack and the tests start as processes when missing: redis-server,
# nginx, prometheus (with promtool), prometheus-alertmanager (with amtool) and the exporters the
# stack's Prometheus scrapes (prometheus-nginx-exporter, -redis-exporter, -node-exporter), and
# chromium (headless, for the investor page's browser tests; Playwright drives /usr/bin/chromium),
# and mount (the lake folder fault tests mount a read-only and a full filesystem; a slim image
# may lack it). They come from Debian's packages, not PyPI. Needs root or sudo; does nothing when
# all are present. The tests fail, not skip, when one of these programs is missing.
set -euo pipefail

declare -A package_of=([redis-server]=redis-server [nginx]=nginx [prometheus]=prometheus
  [promtool]=prometheus [amtool]=prometheus-alertmanager [ab]=apache2-utils
  [mount]=mount [umount]=mount
  [prometheus-nginx-exporter]=prometheus-nginx-exporter
  [prometheus-redis-exporter]=prometheus-redis-exporter
  [prometheus-node-exporter]=prometheus-node-exporter
  [chromium]=chromium)
missing=()
for cmd in "${!package_of[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ]; then
    missing+=("${package_of[$cmd]}")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)  # one package, two programs

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "installing with apt-get: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# --no-install-recommends: no daemons' extras; policy-rc.d keeps services from auto-starting.
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
