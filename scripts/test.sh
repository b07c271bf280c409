#!/usr/bin/env bash
# The whole test suite, as `make test` runs it (after `make venv`). Each gate is timed; the
# last one is pytest (unit, functional, docs, integration, molecule driver, packaging), whose
# closing line CI reads.
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
# Every gate runs or fails: a gate whose script is missing fails the suite, never skips in silence.
# The gates before pytest run side by side, each into its own log (printed when all are done):
# docs-lint (one core: antsibull-docs, then ansible-doc per plugin), ansible-lint, sanity, and the
# version matrix's second point (the lower bounds: ansible-core 2.17, amazon.aws 9) beside .venv's
# 2.19: its unit tests, and the playbooks that between them run every module through the role, the
# info modules and the action group (the rest is .venv's), then the packaging test. They share
# nothing but the machine; `make test-matrix` runs every point with sanity and every playbook.
side_by_side() {
  local started=$SECONDS name result pids=() names=() failed=0 index
  mkdir -p .build
  while [ $# -gt 0 ]; do
    name=$1; shift
    echo "==> $name (side by side; log .build/gate-$name.log)"
    "$1" > ".build/gate-$name.log" 2>&1 &
    pids+=($!); names+=("$name"); shift
  done
  for index in "${!pids[@]}"; do
    if wait "${pids[$index]}"; then result=ok; else result=FAILED; failed=1; fi
    echo "==> ${names[$index]}: $result"
    cat ".build/gate-${names[$index]}.log"
    summary+=("$(printf '%-16s %4ss  %s' "${names[$index]}" $((SECONDS - started)) "$result")")
  done
  return $failed
}
sanity_gate() { bash scripts/sanity.sh; }
matrix_gate() {
  MATRIX_STEPS="unit integration" \
    MATRIX_PLAYBOOKS="instance_profile_role ec2_profile_association_info module_defaults_group" \
    bash scripts/test-matrix.sh 2.17
}
docs_lint_gate() { bash scripts/docs-lint.sh; }
lint_gate() { bash scripts/lint.sh; }
# docs-lint and ansible-lint one after the other took 47 s (docs-lint uses one core), before the rest.
side_by_side docs-lint docs_lint_gate ansible-lint lint_gate sanity sanity_gate matrix-2.17 matrix_gate
# One pytest worker more than the machine has cores: an integration test spends part of its time
# waiting (on its ansible-playbook subprocess, on the sandbox's pacing and soak pauses), and the
# extra worker runs another test then. On 2 cores the pytest gate took 842 s with 3 workers
# against 944 s with 2 (fresh clones of 5a2a060). PYTEST_WORKERS=N overrides it.
workers=${PYTEST_WORKERS:-$(( $(nproc) + 1 ))}
gate pytest "$BIN/python" -m pytest -n "$workers" --durations=30 tests/unit tests/functional tests/docs tests/integration \
  tests/packaging
# The secret scan over every log the run wrote, once all of them are written (under xdist the
# same test may have run before the last logs existed).
gate secret-scan "$BIN/python" -m pytest -p no:cacheprovider tests/integration/test_secrets.py -k no_log_the_tests_wrote

echo "==> gate timings"
printf '  %s\n' "${summary[@]}"
