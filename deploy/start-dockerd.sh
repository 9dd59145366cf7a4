#!/usr/bin/env bash
# Start a Docker engine when none answers (CI machines have no init system).
# The PID goes to /run/rasax-dockerd.pid so whoever started it can stop exactly that process.
# overlay2 first; when the kernel or the filesystem below refuses it, vfs (slow but always works).
set -euo pipefail
docker info >/dev/null 2>&1 && exit 0
log=/var/log/rasax-dockerd.log
# A pid file left by an engine that was killed (machine handed on as it was) stops dockerd.
if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
  rm -f /var/run/docker.pid
fi
for driver in "" vfs; do
  args=(--host unix:///var/run/docker.sock)
  [ -n "$driver" ] && args+=(--storage-driver "$driver")
  # setsid: the engine outlives the CI step or test session that started it.
  setsid dockerd "${args[@]}" >>"$log" 2>&1 &
  pid=$!
  echo "$pid" >/run/rasax-dockerd.pid
  for _ in $(seq 60); do
    if docker info >/dev/null 2>&1; then
      echo "dockerd started (pid $pid, storage driver: $(docker info -f '{{.Driver}}'))"
      exit 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  echo "dockerd ${driver:-with the default storage driver} did not come up; last log lines:" >&2
  tail -n 15 "$log" >&2
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
done
echo "error: no Docker engine could be started (see $log)" >&2
exit 1
