#!/bin/sh
# Entrypoint of the compose service `alertmanager`: renders Alertmanager's configuration from the
# committed observability/alertmanager/alertmanager.yml plus the receivers outside vigil that
# .env turns on, then runs its arguments (Alertmanager itself). vigil is its own receiver, so
# when vigil or its database is down, a page that goes only to vigil reaches nobody: critical
# alerts also go to every receiver configured here (route `external-critical`, `continue: true`
# so that vigil still gets them). See docs/observability.md, "Pages that do not depend on vigil".
#
#   Slack      ALERTMANAGER_SLACK_WEBHOOK_URL      -> $SECRETS_DIR/slack_webhook_url
#              ALERTMANAGER_SLACK_CHANNEL          (optional: the webhook's own channel otherwise)
#   PagerDuty  ALERTMANAGER_PAGERDUTY_ROUTING_KEY  -> $SECRETS_DIR/pagerduty_routing_key
#              (Events API v2 integration key)
#   Email      ALERTMANAGER_EMAIL_TO (comma-separated), ALERTMANAGER_SMTP_SMARTHOST (host:port),
#              ALERTMANAGER_SMTP_FROM, optional ALERTMANAGER_SMTP_USERNAME with
#              ALERTMANAGER_SMTP_PASSWORD -> $SECRETS_DIR/smtp_password, and
#              ALERTMANAGER_SMTP_REQUIRE_TLS (true, the default, or false)
#
# The secrets arrive as files, written by secrets-init (write-secrets.sh) like the webhook
# token, and the rendered configuration only names those files: a receiver is on when its file
# is not empty. Nothing configured: the output is the committed file, byte for byte (vigil only),
# and one line says so. A half-configured receiver (a recipient without a server, a user
# without a password, a value on two lines ...) stops here with one line naming the variable.
#
# Plain POSIX sh with builtins only (the image has busybox's sh and no promise of anything else).
#   ALERTMANAGER_TEMPLATE  the committed file      (default /etc/vigil/alertmanager.yml)
#   ALERTMANAGER_CONFIG    where to write          (default /etc/alertmanager/alertmanager.yml;
#                          its directory holds secrets/webhook_token, which the committed file
#                          names relative to itself)
#   SECRETS_DIR            the secret files        (default: secrets/ beside ALERTMANAGER_CONFIG)
# No arguments: render only (the tests do that).
set -eu

template="${ALERTMANAGER_TEMPLATE:-/etc/vigil/alertmanager.yml}"
out="${ALERTMANAGER_CONFIG:-/etc/alertmanager/alertmanager.yml}"
case "$out" in
*/*) out_dir="${out%/*}" ;;
*) out_dir=. ;;
esac
secrets="${SECRETS_DIR:-$out_dir/secrets}"
case "$secrets" in
/*) ;;
*) secrets="$(pwd)/$secrets" ;; # Alertmanager would read a relative *_file from its working dir
esac

me=alertmanager-config
fail() {
  echo "$me: $1 (see docs/observability.md, \"Pages that do not depend on vigil\")" >&2
  exit 1
}

nl='
'
cr="$(printf '\r')"
one_line() { # variable-name value
  case "$2" in
  *"$nl"* | *"$cr"*) fail "$1 must be one line" ;;
  esac
}
# A value goes into the YAML single-quoted, its quotes doubled (one_line checked it first).
quote() {
  rest="$1" quoted=
  while :; do
    case "$rest" in
    *"'"*)
      quoted="$quoted${rest%%"'"*}''"
      rest="${rest#*"'"}"
      ;;
    *) break ;;
    esac
  done
  printf "'%s'" "$quoted$rest"
}
secret_set() { [ -s "$secrets/$1" ]; }

# ---------------------------------------------------------------- which receivers are on

slack=false pagerduty=false email=false
secret_set slack_webhook_url && slack=true
secret_set pagerduty_routing_key && pagerduty=true
slack_channel="${ALERTMANAGER_SLACK_CHANNEL:-}"
one_line ALERTMANAGER_SLACK_CHANNEL "$slack_channel"
[ -z "$slack_channel" ] || [ "$slack" = true ] ||
  fail "ALERTMANAGER_SLACK_CHANNEL is set but ALERTMANAGER_SLACK_WEBHOOK_URL is not"

email_to="${ALERTMANAGER_EMAIL_TO:-}"
smarthost="${ALERTMANAGER_SMTP_SMARTHOST:-}"
email_from="${ALERTMANAGER_SMTP_FROM:-}"
smtp_user="${ALERTMANAGER_SMTP_USERNAME:-}"
require_tls="${ALERTMANAGER_SMTP_REQUIRE_TLS:-true}"
one_line ALERTMANAGER_EMAIL_TO "$email_to"
one_line ALERTMANAGER_SMTP_FROM "$email_from"
one_line ALERTMANAGER_SMTP_USERNAME "$smtp_user"
smtp_password=false
secret_set smtp_password && smtp_password=true
if [ -n "$email_to" ]; then
  email=true
  [ -n "$smarthost" ] || fail "ALERTMANAGER_EMAIL_TO is set but ALERTMANAGER_SMTP_SMARTHOST is not"
  [ -n "$email_from" ] || fail "ALERTMANAGER_EMAIL_TO is set but ALERTMANAGER_SMTP_FROM is not"
  port="${smarthost##*:}" host="${smarthost%:*}"
  case "$port" in
  "$smarthost" | "" | *[!0-9]*) port= ;;
  esac
  one_line ALERTMANAGER_SMTP_SMARTHOST "$host"
  [ -n "$host" ] && [ -n "$port" ] ||
    fail "ALERTMANAGER_SMTP_SMARTHOST must be host:port, such as smtp.example.com:587 (got $smarthost)"
  case "$require_tls" in
  true | false) ;;
  *) fail "ALERTMANAGER_SMTP_REQUIRE_TLS must be true or false (got $require_tls)" ;;
  esac
  if [ -n "$smtp_user" ] && [ "$smtp_password" = false ]; then
    fail "ALERTMANAGER_SMTP_USERNAME is set but ALERTMANAGER_SMTP_PASSWORD is not"
  fi
  if [ -z "$smtp_user" ] && [ "$smtp_password" = true ]; then
    fail "ALERTMANAGER_SMTP_PASSWORD is set but ALERTMANAGER_SMTP_USERNAME is not"
  fi
elif [ -n "$smarthost$email_from$smtp_user" ] || [ "$smtp_password" = true ]; then
  fail "ALERTMANAGER_SMTP_* is set but ALERTMANAGER_EMAIL_TO is not"
fi

on=
[ "$slack" = false ] || on="$on slack"
[ "$pagerduty" = false ] || on="$on pagerduty"
[ "$email" = false ] || on="$on email"

# ---------------------------------------------------------------- the blocks it inserts

route() { # indent
  printf '%s\n' \
    "$1- receiver: external-critical" \
    "$1  matchers:" \
    "$1    - severity=\"critical\"" \
    "$1  group_wait: 10s" \
    "$1  group_interval: 1m" \
    "$1  repeat_interval: 1h" \
    "$1  continue: true # vigil-critical, next, gets it too"
}

receiver() { # indent
  i="$1"
  printf '%s\n' "$i- name: external-critical"
  if [ "$slack" = true ]; then
    printf '%s\n' \
      "$i  slack_configs:" \
      "$i    - api_url_file: $(quote "$secrets/slack_webhook_url")" \
      "$i      send_resolved: true"
    if [ -n "$slack_channel" ]; then
      printf '%s\n' "$i      channel: $(quote "$slack_channel")"
    fi
  fi
  if [ "$pagerduty" = true ]; then
    printf '%s\n' \
      "$i  pagerduty_configs:" \
      "$i    - routing_key_file: $(quote "$secrets/pagerduty_routing_key")" \
      "$i      send_resolved: true" \
      "$i      severity: critical"
  fi
  if [ "$email" = true ]; then
    printf '%s\n' \
      "$i  email_configs:" \
      "$i    - to: $(quote "$email_to")" \
      "$i      from: $(quote "$email_from")" \
      "$i      smarthost: $(quote "$smarthost")" \
      "$i      require_tls: $require_tls" \
      "$i      send_resolved: true"
    if [ -n "$smtp_user" ]; then
      printf '%s\n' \
        "$i      auth_username: $(quote "$smtp_user")" \
        "$i      auth_password_file: $(quote "$secrets/smtp_password")"
    fi
  fi
}

# ---------------------------------------------------------------- render

[ -r "$template" ] || fail "cannot read $template"
routes=0 receivers=0
while IFS= read -r line || [ -n "$line" ]; do
  indent="${line%%[! ]*}"
  case "${line#"$indent"}" in
  "# @external-critical-route")
    routes=$((routes + 1))
    [ -z "$on" ] || route "$indent"
    ;;
  "# @external-critical-receiver")
    receivers=$((receivers + 1))
    [ -z "$on" ] || receiver "$indent"
    ;;
  esac
  printf '%s\n' "$line"
done <"$template" >"$out" || fail "cannot write $out"
# Without its markers the template would drop the receivers silently: refuse instead.
if [ "$routes" -ne 1 ] || [ "$receivers" -ne 1 ]; then
  fail "$template must have each of these lines once: # @external-critical-route, # @external-critical-receiver"
fi

if [ -z "$on" ]; then
  echo "$me: no receiver outside vigil is configured: critical alerts reach only vigil (set ALERTMANAGER_SLACK_WEBHOOK_URL, ALERTMANAGER_PAGERDUTY_ROUTING_KEY or ALERTMANAGER_EMAIL_TO)"
else
  echo "$me: critical alerts go to vigil and, outside vigil, to:$on"
fi

[ "$#" -eq 0 ] || exec "$@"
