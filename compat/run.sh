#!/usr/bin/env bash
# Runs every client-compatibility suite against a freshly built berth, installing each suite's
# pinned dependencies first, and prints a pass/fail line per suite. Exits non-zero if any failed.
# Usage: compat/run.sh [suite ...]   (suites: python-redis-py python-client-cache python-rq
#   python-celery sidekiq bullmq node-others bull-board python-sidekiq-resp3 python-migrate)
# COMPAT_SERVER=redis runs the suites against Debian's redis-server instead, to check the suites.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export BERTH_BIN="${BERTH_BIN:-$here/../target/debug/berth}"
[ -x "$BERTH_BIN" ] || { echo "compat: $BERTH_BIN not built (run cargo build)"; exit 1; }

python_env() {
  local venv="$here/python/.venv"
  if [ ! -x "$venv/bin/python" ] || ! cmp -s "$here/python/requirements.txt" "$venv/requirements.txt"; then
    rm -rf "$venv"
    python3 -m venv "$venv" && "$venv/bin/pip" install -q -r "$here/python/requirements.txt" \
      && cp "$here/python/requirements.txt" "$venv/requirements.txt"
  fi
}

suite_cmd() {
  case "$1" in
    python-redis-py) echo "$here/python/.venv/bin/python -m unittest -v test_redis_py" ;;
    python-client-cache) echo "$here/python/.venv/bin/python -m unittest -v test_client_cache" ;;
    python-rq) echo "$here/python/.venv/bin/python -m unittest -v test_rq" ;;
    python-celery) echo "$here/python/.venv/bin/python -m unittest -v test_celery" ;;
    python-sidekiq-resp3) echo "$here/python/.venv/bin/python -m unittest -v test_sidekiq_resp3" ;;
    python-migrate) echo "$here/python/.venv/bin/python -m unittest -v test_migrate" ;;
    sidekiq) echo "ruby $here/sidekiq/test_sidekiq.rb" ;;
    bullmq) echo "node --test --test-concurrency=1 bullmq.test.js" ;;
    node-others) echo "node --test --test-concurrency=1 others.test.js" ;;
    bull-board) echo "node --test --test-concurrency=1 bullboard.test.js" ;;
  esac
}

suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(python-redis-py python-client-cache python-rq python-celery python-sidekiq-resp3 sidekiq bullmq node-others bull-board python-migrate)
python_env || { echo "compat: installing python dependencies failed"; exit 1; }
if [[ " ${suites[*]} " =~ " "(bullmq|node-others|bull-board)" " ]]; then
  (cd "$here/bullmq" && npm ci --no-audit --no-fund --loglevel=error) || { echo "compat: npm ci failed"; exit 1; }
fi
results=()
status=0
for s in "${suites[@]}"; do
  echo "--- compat: $s"
  dir="$here/python"
  case "$s" in sidekiq) dir="$here/sidekiq" ;; bullmq | node-others | bull-board) dir="$here/bullmq" ;; esac
  if (cd "$dir" && timeout 600 $(suite_cmd "$s")); then
    results+=("PASS $s")
  else
    results+=("FAIL $s")
    status=1
  fi
done
echo
printf 'compat %s\n' "${results[@]}"
exit $status
