#!/usr/bin/env bash
# ansible-lint --offline --profile production on the whole checkout (after `make venv`).
# Configuration in .ansible-lint; keyless.aws.* and amazon.aws.* resolve through ansible.cfg
# (collections_path = .build/collections, laid out by scripts/link-collections.sh).
# Usage: scripts/lint.sh [extra ansible-lint args]
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
[ -x "$venv/bin/ansible-lint" ] || { echo "lint: $venv/bin/ansible-lint missing: run 'make venv' first" >&2; exit 2; }
[ -e .build/collections/ansible_collections/amazon/aws ] || bash scripts/link-collections.sh "$venv" .build/collections
export ANSIBLE_CONFIG=$PWD/ansible.cfg
export PATH=$PWD/$venv/bin:$PATH
set +e
"$venv/bin/ansible-lint" --offline --profile production --nocolor "$@"
rc=$?
set -e
if [ "$rc" -eq 0 ]; then echo "lint: passed"; else echo "lint: FAILED (ansible-lint exit $rc)"; fi
exit "$rc"
