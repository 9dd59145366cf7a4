#!/bin/sh
set -eu
: "${REDIS_PASSWORD:?REDIS_PASSWORD is not set: run rasax-deploy init}"
conf=$(mktemp)
chmod 600 "$conf"
cat >"$conf" <<CONF
bind * -::*
protected-mode no
port 6379
dir /data
appendonly yes
requirepass $REDIS_PASSWORD
CONF
exec redis-server "$conf" "$@"
