#!/usr/bin/env bash
# The production topology without Docker, checked end to end (docs/deployment.md):
# PostgreSQL + Redis + 2 gunicorn web processes + 2 worker clusters on loopback, DEBUG=0, the
# secrets read from files. A fresh database and Redis queue per checkout; `manage.py topology`
# does the rest and exits non-zero when anything is off.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PG_URL=${DATABASE_URL_PG:-postgres://postgres@127.0.0.1:5432/postgres}
REDIS_BASE=${REDIS_URL_TOPOLOGY:-redis://127.0.0.1:6379/9}
checkout=$(pwd | sha256sum | cut -c1-8)
db="relay_topology_${checkout}"

work=var/topology
rm -rf "$work" var/topology-*.log
mkdir -p "$work"
umask 077
"$PY" -c "import secrets; print(secrets.token_urlsafe(50))" > "$work/secret_key"
"$PY" -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())" \
  > "$work/encryption_key"
echo "${PG_URL%/*}/${db}" > "$work/database_url"

psql "$PG_URL" -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS ${db} WITH (FORCE)" \
  -c "CREATE DATABASE ${db}" >/dev/null
trap 'psql "$PG_URL" -q -c "DROP DATABASE IF EXISTS ${db} WITH (FORCE)" >/dev/null 2>&1 || true' EXIT

export DEBUG=0
export SECRET_KEY_FILE=$PWD/$work/secret_key
export RELAY_ENCRYPTION_KEY_FILE=$PWD/$work/encryption_key
export DATABASE_URL_FILE=$PWD/$work/database_url
export REDIS_URL=$REDIS_BASE
export RELAY_Q_NAME="relay-topology-${checkout}"
export ALLOWED_HOSTS=127.0.0.1,localhost
export RELAY_ALLOW_INSECURE_UPSTREAMS=1
export RELAY_RETRY_BASE_DELAY=1 RELAY_RETRY_MAX_DELAY=5
# The log check greps DEBUG-level JSON lines for every key the run used.
export LOG_LEVEL=DEBUG RELAY_LOG_FORMAT=json RELAY_Q_LOG_LEVEL=INFO
unset DATABASE_URL SECRET_KEY RELAY_ENCRYPTION_KEY

"$PY" - <<PYEOF
import redis
client = redis.Redis.from_url("$REDIS_BASE")
for key in client.scan_iter("django_q:${RELAY_Q_NAME}:*"):
    client.delete(key)
PYEOF
"$PY" manage.py migrate --noinput -v0
"$PY" manage.py collectstatic --noinput -v0
# The command's own log is checked for keys too; on success print its summary lines only.
if ! "$PY" manage.py topology > var/topology-command.log 2>&1; then
  tail -n 60 var/topology-command.log; exit 1
fi
grep -v '^{' var/topology-command.log
