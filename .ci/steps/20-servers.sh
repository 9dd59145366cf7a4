# Start PostgreSQL, RabbitMQ and Redis when they are not running (no init system here).
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
if ! pg_up; then
  ver=$(ls /etc/postgresql | sort -n | tail -1)
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start
  for _ in $(seq 30); do pg_up && break; sleep 1; done
fi
# Tests connect over TCP as postgres without a password: trust on loopback only.
if ! psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
  ver=$(ls /etc/postgresql | sort -n | tail -1)
  hba=/etc/postgresql/$ver/main/pg_hba.conf
  sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  pg_ctlcluster --skip-systemctl-redirect "$ver" main reload
  sleep 1
fi
psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'select 1' >/dev/null

if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 30); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 1; done
fi

if ! rabbitmqctl -q status >/dev/null 2>&1; then
  rabbitmq-server -detached
  rabbitmqctl -q wait --timeout 120 /var/lib/rabbitmq/mnesia/rabbit@"$(hostname -s)".pid >/dev/null 2>&1 \
    || for _ in $(seq 60); do rabbitmqctl -q status >/dev/null 2>&1 && break; sleep 2; done
fi
rabbitmqctl -q status >/dev/null
