#!/bin/sh
# Run by the compose service `secrets-init` before Prometheus and Alertmanager start. Their
# configuration files cannot read environment variables, so the two tokens they send are
# written from the environment into files on two volumes, each mounted only into the service
# that needs it, readable only by the user those images run as (nobody, 65534).
#   METRICS_TOKEN              -> /secrets/prometheus/metrics_token     (Prometheus scrapes /metrics)
#   ALERTMANAGER_WEBHOOK_TOKEN -> /secrets/alertmanager/webhook_token   (Alertmanager posts alerts)
# and, optional, the receivers outside vigil (alertmanager-config.sh turns on those whose file
# is not empty; docs/observability.md, "Pages that do not depend on vigil"):
#   ALERTMANAGER_SLACK_WEBHOOK_URL     -> /secrets/alertmanager/slack_webhook_url
#   ALERTMANAGER_PAGERDUTY_ROUTING_KEY -> /secrets/alertmanager/pagerduty_routing_key
#   ALERTMANAGER_SMTP_PASSWORD         -> /secrets/alertmanager/smtp_password
# An unset variable gives an empty file and a warning (none for the optional ones, which an
# empty file turns off): the stack still starts.
#
# vigil's own key, VIGIL_SECRET_KEY (it encrypts the secrets vigil stores; README "Secrets at
# rest"), goes to vigil only, from .env: it must stay the same across restarts, so it is never
# generated here at each `up`. On the host, once:
#   sh observability/compose/write-secrets.sh vigil-key [.env]
# generates one (32 random bytes, base64) into .env (copied from .env.example if missing), unless
# .env already holds one: a key that is set is never replaced (the secrets it encrypted would be
# lost; rotation is VIGIL_SECRET_KEY_PREVIOUS, see the README).
set -eu
umask 077

if [ "${1:-}" = vigil-key ]; then
  env_file="${2:-.env}"
  if [ ! -e "$env_file" ] && [ -f .env.example ]; then cp .env.example "$env_file"; fi
  touch "$env_file"
  current=$(sed -n 's/^VIGIL_SECRET_KEY=//p' "$env_file" | tail -n 1)
  case "$current" in
  "" | CHANGE_ME*) ;;
  *)
    echo "write-secrets: $env_file already sets VIGIL_SECRET_KEY; kept"
    exit 0
    ;;
  esac
  if command -v openssl >/dev/null 2>&1; then
    key=$(openssl rand -base64 32)
  else
    key=$(head -c 32 /dev/urandom | base64 | tr -d '\n')
  fi
  tmp="$env_file.tmp.$$"
  awk -v key="$key" '
    /^VIGIL_SECRET_KEY=/ { if (!done) print "VIGIL_SECRET_KEY=" key; done = 1; next }
    { print }
    END { if (!done) print "VIGIL_SECRET_KEY=" key }
  ' "$env_file" >"$tmp"
  cat "$tmp" >"$env_file" # keeps the file's owner and mode
  rm -f "$tmp"
  echo "write-secrets: wrote a new VIGIL_SECRET_KEY to $env_file (keep it: back it up)"
  exit 0
fi

dir="${SECRETS_DIR:-/secrets}"

write() { # file value variable-name [optional]
  mkdir -p "$(dirname "$1")"
  chown 65534:65534 "$(dirname "$1")"
  chmod 0700 "$(dirname "$1")"
  printf '%s' "$2" >"$1.tmp"
  chown 65534:65534 "$1.tmp"
  chmod 0400 "$1.tmp"
  mv -f "$1.tmp" "$1"
  if [ -z "$2" ]; then
    [ "${4:-}" = optional ] || echo "secrets-init: warning: $3 is not set (see .env.example)" >&2
  else
    echo "secrets-init: wrote $1 from $3"
  fi
}

write "$dir/prometheus/metrics_token" "${METRICS_TOKEN:-}" METRICS_TOKEN
write "$dir/alertmanager/webhook_token" "${ALERTMANAGER_WEBHOOK_TOKEN:-}" ALERTMANAGER_WEBHOOK_TOKEN
opt() { write "$dir/alertmanager/$1" "$2" "$3" optional; }
opt slack_webhook_url "${ALERTMANAGER_SLACK_WEBHOOK_URL:-}" ALERTMANAGER_SLACK_WEBHOOK_URL
opt pagerduty_routing_key "${ALERTMANAGER_PAGERDUTY_ROUTING_KEY:-}" ALERTMANAGER_PAGERDUTY_ROUTING_KEY
opt smtp_password "${ALERTMANAGER_SMTP_PASSWORD:-}" ALERTMANAGER_SMTP_PASSWORD
