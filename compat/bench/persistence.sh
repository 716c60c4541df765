#!/usr/bin/env bash
# SET and LPUSH at 50 clients, pipeline 1 and 16: Berth under appendfsync always (each engine)
# beside redis-server with AOF always and everysec. Usage: compat/bench/persistence.sh [BERTH]
set -u
BERTH=${1:-./target/debug/berth}
N1=${N1:-20000}
N16=${N16:-100000}
run() { # name port
  for p in 1 16; do
    n=$N1; [ "$p" = 16 ] && n=$N16
    redis-benchmark -p "$2" -c 50 -n "$n" -P "$p" -t set,lpush -q 2>/dev/null | tr '\r' '\n' | grep -E "requests per second" | sed "s/^/$1 P=$p /"
  done
}
port=7601
for mode in fjall:always sled:always fjall:everysec; do
  engine=${mode%%:*}; fsync=${mode#*:}
  d=$(mktemp -d); "$BERTH" --port $port --dir "$d" --storage-engine $engine --appendfsync $fsync --loglevel warning & pid=$!
  sleep 1; run "berth-$engine-$fsync" $port; redis-cli -p $port info persistence | grep -E "berth_(commit_batches|syncs|lsn)" | tr -d '\r' | sed "s/^/berth-$engine-$fsync /"
  kill $pid; wait $pid 2>/dev/null; rm -rf "$d"; port=$((port+1))
done
# Calibration: the same build without persistence.
d=$(mktemp -d); "$BERTH" --port $port --dir "$d" --appendonly no --loglevel warning & pid=$!
sleep 1; run "berth-memory-only" $port; kill $pid; wait $pid 2>/dev/null; rm -rf "$d"; port=$((port+1))
for fs in always everysec; do
  d=$(mktemp -d); redis-server --port $port --dir "$d" --appendonly yes --appendfsync $fs --save "" --daemonize no --loglevel warning >/dev/null & pid=$!
  sleep 1; run "redis-aof-$fs" $port
  kill $pid; wait $pid 2>/dev/null; rm -rf "$d"; port=$((port+1))
done
