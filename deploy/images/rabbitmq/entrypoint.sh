#!/bin/sh
# The broker user comes from RABBITMQ_DEFAULT_USER/_PASS (the official image's names); the guest
# account is never created. An absolute disk-free limit (RABBITMQ_DISK_FREE_LIMIT, default 1GB)
# because the relative default blocks publishers on small VMs with plenty of free space.
set -eu
: "${RABBITMQ_DEFAULT_USER:?RABBITMQ_DEFAULT_USER is not set: run rasax-deploy init}"
: "${RABBITMQ_DEFAULT_PASS:?RABBITMQ_DEFAULT_PASS is not set: run rasax-deploy init}"
umask 077
cat >/etc/rabbitmq/rabbitmq.conf <<CONF
listeners.tcp.default = 5672
default_user = $RABBITMQ_DEFAULT_USER
default_pass = $RABBITMQ_DEFAULT_PASS
default_vhost = ${RABBITMQ_DEFAULT_VHOST:-/}
loopback_users = none
disk_free_limit.absolute = ${RABBITMQ_DISK_FREE_LIMIT:-1GB}
log.console = true
log.file = false
CONF
exec rabbitmq-server "$@"
