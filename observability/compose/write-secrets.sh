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
# On the host, once, before the first `docker compose up`:
#   sh observability/compose/write-secrets.sh env [.env]
# writes .env (copied from .env.example if missing) with every secret generated: each
# CHANGE_ME placeholder, VIGIL_SECRET_KEY (32 random bytes, base64: it encrypts the secrets vigil
# stores, README "Secrets at rest") and ADMIN_API_KEY (vgl_…, vigil's first admin key), and says
# where the admin key is. A value that is set is never replaced (VIGIL_SECRET_KEY least of all:
# the secrets it encrypted would be lost; rotation is VIGIL_SECRET_KEY_PREVIOUS). vigil's key
# and admin key go to vigil only, from .env; they are never generated at each `up`.
set -eu
umask 077

random_hex() { # bytes
  if command -v openssl >/dev/null 2>&1; then openssl rand -hex "$1"; else
    head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'
  fi
}
random_base64() { # bytes
  if command -v openssl >/dev/null 2>&1; then openssl rand -base64 "$1"; else
    head -c "$1" /dev/urandom | base64 | tr -d '\n'
  fi
}

if [ "${1:-}" = env ]; then
  env_file="${2:-.env}"
  if [ ! -e "$env_file" ] && [ -f .env.example ]; then cp .env.example "$env_file"; fi
  touch "$env_file"
  tmp="$env_file.tmp.$$"
  written=""
  : >"$tmp"
  while IFS= read -r line || [ -n "$line" ]; do
    name=${line%%=*}
    value=${line#*=}
    case "$line" in
    \#* | "" | *[!A-Za-z0-9_=]*=* ) printf '%s\n' "$line" >>"$tmp"; continue ;;
    esac
    case "$name=$value" in
    VIGIL_SECRET_KEY= | VIGIL_SECRET_KEY=CHANGE_ME*) value=$(random_base64 32) ;;
    ADMIN_API_KEY= | ADMIN_API_KEY=CHANGE_ME*) value="vgl_$(random_hex 24)" ;;
    *=CHANGE_ME*) value=$(random_hex 24) ;;
    *) printf '%s\n' "$line" >>"$tmp"; continue ;;
    esac
    printf '%s=%s\n' "$name" "$value" >>"$tmp"
    written="$written $name"
  done <"$env_file"
  for name in VIGIL_SECRET_KEY ADMIN_API_KEY; do # a file without them gets them
    if ! grep -q "^$name=" "$tmp"; then
      [ "$name" = VIGIL_SECRET_KEY ] && value=$(random_base64 32) || value="vgl_$(random_hex 24)"
      printf '%s=%s\n' "$name" "$value" >>"$tmp"
      written="$written $name"
    fi
  done
  cat "$tmp" >"$env_file" # keeps the file's owner and mode
  rm -f "$tmp"
  if [ -z "$written" ]; then
    echo "write-secrets: $env_file has every secret already; nothing changed"
  else
    echo "write-secrets: generated$written in $env_file (keep it, and back up VIGIL_SECRET_KEY)"
    case "$written" in
    *ADMIN_API_KEY*) echo "write-secrets: your admin API key is ADMIN_API_KEY in $env_file" ;;
    esac
  fi
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
