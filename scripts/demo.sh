#!/usr/bin/env bash
# `make demo`: runs inside `python -m sandbox run`, so AWS_URL and dummy credentials point at
# the embedded sandbox. Provisions twice: the second run must change nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
playbook=(.venv/bin/ansible-playbook playbooks/provision.yml)
log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "== keyless.aws demo against the sandbox at $AWS_URL (no AWS account involved)"
echo "== first run: provision"
"${playbook[@]}" | tee "$log"
echo "== second run: the same playbook again must change nothing"
"${playbook[@]}" | tee "$log"
if ! grep -Eq 'localhost +: ok=[0-9]+ +changed=0 ' "$log"; then
  echo "demo: the second run reported changes: provisioning is not idempotent" >&2
  exit 1
fi
echo "== demo done: provisioned, and the re-run changed nothing"
