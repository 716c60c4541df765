#!/usr/bin/env bash
# Berth beside Debian's redis-server 7.0.15 in one run, with the same load. One command:
#   compat/bench/run.sh            issue 7: Berth (fjall) and Redis under everysec and always:
#                                  redis-benchmark (7 commands, 50 clients, pipeline 1 and 16),
#                                  Sidekiq 6.4 and BullMQ 6 with 100,000 jobs, RSS and restart
#                                  with 1,000,000 queued 500-byte jobs (about 10 minutes)
#   compat/bench/run.sh --matrix   issue 5: Berth fjall and sled under always, everysec, no
#                                  against Redis AOF always and everysec: redis-benchmark at 1
#                                  and 50 clients, pipeline 1 and 16; then compat/bench/disk.sh
#                                  (restart with 1M jobs, disk use under 10M churn cycles)
#                                  (about 18 minutes)
#   --quick                        tiny counts (a couple of minutes): checks the run, its figures
#                                  are not results; written to docs/bench/quick/ (not committed)
#   --out DIR                      output folder (default docs/bench; --parts/--servers: docs/bench/partial)
#   --parts a,b                    a subset: redis-benchmark,sidekiq,bullmq,disk
#   --servers 'Berth always,sled'  only servers whose label contains one of these (not disk)
# Writes docs/bench/side-by-side.{md,csv,png} or docs/bench/persistence-matrix.{md,csv,png} and
# prints the table. Installs what it needs: Debian packages (as .ci/run does, when root), a
# release build of Berth (cargo decides whether it is stale), the BullMQ node_modules of
# compat/bullmq, and matplotlib in compat/bench/.venv (pinned in compat/bench/requirements.txt).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

BENCH_COMMAND=compat/bench/run.sh  # as typed, for the report's header
for a in "$@"; do
  if [[ $a =~ [^A-Za-z0-9_./,=:-] ]]; then BENCH_COMMAND+=" '$a'"; else BENCH_COMMAND+=" $a"; fi
done
export BENCH_COMMAND
mode=side
pass=()
while [ $# -gt 0 ]; do
  case "$1" in
    --matrix) mode=matrix ;;
    --side) mode=side ;;
    --quick) pass+=(--quick) ;;
    --out | --parts | --servers) pass+=("$1" "$2"); shift ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "compat/bench/run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

# Debian packages: the same ones .ci/run installs for the compat suites.
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-benchmark >/dev/null || need+=(redis-tools)
command -v python3 >/dev/null || need+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ "$mode" = side ]; then
  for pkg in ruby ruby-sidekiq ruby-redis; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
  command -v npm >/dev/null || need+=(nodejs npm)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${need[@]}"
  else
    echo "compat/bench/run.sh: missing Debian packages: ${need[*]} (apt-get install them)" >&2
    exit 1
  fi
fi

echo "--- bench: cargo build --release" >&2
nice cargo build --release --bin berth -q

venv="$here/.venv"
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$here/requirements.txt" "$venv/requirements.txt"; then
  echo "--- bench: installing matplotlib into compat/bench/.venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$venv/requirements.txt"
fi

if [ "$mode" = side ] && { [ ! -f "$root/compat/bullmq/node_modules/.package-lock.json" ] ||
  [ "$root/compat/bullmq/package-lock.json" -nt "$root/compat/bullmq/node_modules/.package-lock.json" ]; }; then
  echo "--- bench: npm ci in compat/bullmq" >&2
  (cd "$root/compat/bullmq" && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "--- bench: $mode ${pass[*]:-}" >&2
exec "$venv/bin/python" "$here/suite.py" --berth "$root/target/release/berth" --mode "$mode" "${pass[@]}"
