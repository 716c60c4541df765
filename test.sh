#!/usr/bin/env bash
# Builds Berth and runs every test suite: Rust unit and integration tests, the differential
# protocol tests (recorded from redis-server 7.0.15), the client-compatibility suites and the
# container image check (hadolint, the image's command lines), all against the built binary.
set -euo pipefail
cd "$(dirname "$0")"
status=0
summary=()
run() {
  local name=$1; shift
  echo "=== $name"
  if "$@"; then summary+=("PASS $name"); else summary+=("FAIL $name"); status=1; fi
}
run "cargo test" cargo test --quiet
run "protocol tests" python3 protocol-tests/run.py
run "compat suites" compat/run.sh
run "docker" docker/check.sh
echo
printf '%s\n' "${summary[@]}"
exit $status
