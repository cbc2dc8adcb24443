#!/usr/bin/env bash
# `make demo`: the product on its embedded default (the Scalekit emulator, SQLite, sample data).
# Stops both servers on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PORT="${DEMO_PORT:-8000}"
EMULATOR_PORT="${DEMO_EMULATOR_PORT:-8443}"
SITE="http://localhost:$PORT"
mkdir -p var

if [ ! -f .env ]; then
    secret=$($PY -c 'import secrets; print(secrets.token_urlsafe(50))')
    cat > .env <<ENV
# Written by make demo: a local, insecure configuration for the emulator. Not for production.
DJANGO_SECRET_KEY=$secret
DJANGO_DEBUG=true
DJANGO_SECURE_COOKIES=false
SCALEKIT_EMULATOR_APP=true
SCALEKIT_STAFF_ROLES=admin
ENV
    echo "demo: wrote .env"
fi
# The process environment wins over .env: the demo needs these whatever a copied .env says
# (.env.example is a production template: DEBUG off, secure cookies, no emulator app).
export DJANGO_DEBUG=true DJANGO_SECURE_COOKIES=false SCALEKIT_EMULATOR_APP=true
export SCALEKIT_STAFF_ROLES="${SCALEKIT_STAFF_ROLES:-admin}"

$PY manage.py scalekit_emulator --port "$EMULATOR_PORT" --state-dir var/emulator --persist \
    --redirect-uri "$SITE/auth/callback/" \
    --post-logout-redirect-uri "$SITE/" \
    --initiate-login-uri "$SITE/auth/login/" \
    --webhook-url "$SITE/auth/webhooks/" --webhook-secret "${DEMO_WEBHOOK_SECRET:-whsec_ZGVtby13ZWJob29rLXNlY3JldC1ub3QtZm9yLXByb2Q=}" \
    > var/emulator.out 2> var/emulator.log &
EMULATOR_PID=$!
trap 'kill $EMULATOR_PID 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 50); do
    grep -q SCALEKIT_ENVIRONMENT_URL var/emulator.out 2>/dev/null && break
    kill -0 $EMULATOR_PID 2>/dev/null || { cat var/emulator.log >&2; exit 1; }
    sleep 0.2
done
if ! grep -q SCALEKIT_ENVIRONMENT_URL var/emulator.out 2>/dev/null; then
    echo "The emulator printed no banner within 10 s; its log (var/emulator.log):" >&2
    cat var/emulator.log >&2
    exit 1
fi
# The banner is "NAME=value NAME=value ...": export each for the Django processes below.
for assignment in $(head -1 var/emulator.out); do export "${assignment?}"; done

$PY manage.py migrate --noinput >/dev/null
$PY manage.py demo_data

cat <<MSG

  Scalekit emulator  $SCALEKIT_ENVIRONMENT_URL   (control API: $SCALEKIT_ENVIRONMENT_URL/_emulator/)
  Site               $SITE/
  Admin              $SITE/admin/   (user "admin", password in var/demo-admin-password.txt)

MSG
$PY manage.py runserver "localhost:$PORT"
