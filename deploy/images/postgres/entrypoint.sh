#!/bin/sh
# First start: initdb with the generated password (scram-sha-256 for every network client).
# Later starts: refuse a data folder of another PostgreSQL major version instead of corrupting it.
set -eu
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is not set: run rasax-deploy init}"
user="${POSTGRES_USER:-postgres}"
if [ -s "$PGDATA/PG_VERSION" ]; then
  found=$(cat "$PGDATA/PG_VERSION")
  if [ "$found" != "$PG_MAJOR" ]; then
    echo "error: $PGDATA holds a PostgreSQL $found cluster, this image runs $PG_MAJOR." >&2
    echo "       \`rasax-deploy upgrade\` moves the data: it backs up from the $found server, then restores" >&2
    echo "       the dumps into a new $PG_MAJOR cluster." >&2
    exit 1
  fi
else
  pwfile=$(mktemp)
  printf '%s' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 -D "$PGDATA" >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  if [ -n "${POSTGRES_DB:-}" ] && [ "$POSTGRES_DB" != postgres ]; then
    postgres --single -D "$PGDATA" -c listen_addresses='' postgres >/dev/null <<SQL
CREATE DATABASE "$POSTGRES_DB";
SQL
  fi
  echo "initialised a PostgreSQL $PG_MAJOR cluster in $PGDATA"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/var/run/postgresql "$@"
