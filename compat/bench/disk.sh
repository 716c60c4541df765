#!/usr/bin/env bash
# Restart time with 1M queued 500-byte jobs (Berth fjall and sled under `always`, Redis 7.0.15
# with AOF `always`) and disk use of a queue churned at a steady depth of 10,000 (Berth, each
# engine, `everysec`). Prints Markdown tables. A benchmark: it asserts only that data comes back.
# Usage: compat/bench/disk.sh [BERTH]   (default ./target/release/berth)
# Knobs (environment): JOBS=1000000 CYCLES=10000000 CHURN_SECONDS=600 ENGINES=fjall,sled
#                      FSYNCS=always (restart part) IDLE_SECONDS=30 CSV=file (restart rows)
#                      PARTS=restart,churn
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec python3 "$here/disk.py" "${1:-./target/release/berth}"
