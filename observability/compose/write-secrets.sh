#!/bin/sh
# Run by the compose service `secrets-init` before Prometheus and Alertmanager start. Their
# configuration files cannot read environment variables, so the two tokens they send are
# written from the environment into files on two volumes, each mounted only into the service
# that needs it, readable only by the user those images run as (nobody, 65534).
#   METRICS_TOKEN              -> /secrets/prometheus/metrics_token     (Prometheus scrapes /metrics)
#   ALERTMANAGER_WEBHOOK_TOKEN -> /secrets/alertmanager/webhook_token   (Alertmanager posts alerts)
# An unset variable gives an empty file and a warning: the stack still starts.
set -eu
umask 077
dir="${SECRETS_DIR:-/secrets}"

write() { # file value variable-name
  mkdir -p "$(dirname "$1")"
  chown 65534:65534 "$(dirname "$1")"
  chmod 0700 "$(dirname "$1")"
  printf '%s' "$2" >"$1.tmp"
  chown 65534:65534 "$1.tmp"
  chmod 0400 "$1.tmp"
  mv -f "$1.tmp" "$1"
  if [ -z "$2" ]; then
    echo "secrets-init: warning: $3 is not set (see .env.example)" >&2
  else
    echo "secrets-init: wrote $1 from $3"
  fi
}

write "$dir/prometheus/metrics_token" "${METRICS_TOKEN:-}" METRICS_TOKEN
write "$dir/alertmanager/webhook_token" "${ALERTMANAGER_WEBHOOK_TOKEN:-}" ALERTMANAGER_WEBHOOK_TOKEN
