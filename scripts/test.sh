#!/usr/bin/env bash
# The whole test suite, as `make test` runs it (after `make venv`). Each gate is timed; the
# last one is pytest (unit + integration + molecule driver), whose closing line CI reads.
set -euo pipefail
cd "$(dirname "$0")/.."
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
BIN=.venv/bin
summary=()

gate() {
  local name=$1; shift
  local started=$SECONDS
  echo "==> $name"
  "$@"
  summary+=("$(printf '%-16s %4ss' "$name" $((SECONDS - started)))")
}

gate changelog-lint "$BIN/antsibull-changelog" lint
[ -x scripts/docs-lint.sh ] && gate docs-lint bash scripts/docs-lint.sh
[ -x scripts/lint.sh ] && gate ansible-lint bash scripts/lint.sh
[ -x scripts/sanity.sh ] && gate sanity bash scripts/sanity.sh
gate pytest "$BIN/python" -m pytest -n "${PYTEST_WORKERS:-2}" tests/unit tests/integration

echo "==> gate timings"
printf '  %s\n' "${summary[@]}"
