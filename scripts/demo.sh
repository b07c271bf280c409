#!/usr/bin/env bash
# `make demo`: runs inside `python -m sandbox run`, so AWS_URL, the dummy credentials and
# KEYLESS_SANDBOX_URL point at the embedded sandbox. The whole job, no AWS account:
# provision (the real playbooks/provision.yml), launch, attach, credentials on the instance,
# the common pitfalls, idempotence, teardown.
set -euo pipefail
cd "$(dirname "$0")/.."
export ANSIBLE_DISPLAY_SKIPPED_HOSTS=false
playbook=.venv/bin/ansible-playbook
log=$(mktemp)
trap 'rm -f "$log"' EXIT

step() {
  local title=$1; shift
  printf '\n\033[1m== %s\033[0m\n' "$title"
  "$playbook" "$@" | tee "$log"
}

# The sandbox's EC2 does not know a profile for a moment after IAM changed it (as EC2 does for a
# minute or two): keep that window open 15 s, so that the launch right after provisioning
# shows what it meets; back to the sandbox's default (1 s) once the instance runs.
rules() {
  .venv/bin/python - "$KEYLESS_SANDBOX_URL/_sandbox/rules" "$1" <<'PY'
import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), method="POST",
                                              headers={"Content-Type": "application/json"}), timeout=10).read()
PY
}

echo "keyless.aws demo against the sandbox at $AWS_URL (no AWS account involved)"
rules '{"settings": {"propagation_seconds": 15}}'
step "1/6 provision: a role EC2 may assume (S3 read-only), its profile, an IMDSv2-only launch template that carries the profile" \
  playbooks/provision.yml -e @demo/vars.yml
step "2/6 attach at launch: an application instance from the template, the profile on it from its first second" \
  demo/launch.yml
launched=$(grep -Eo '(instance i-[0-9a-f]+ launched from template [^"]*|EC2 (did not know|knew) the profile[^"]*)' "$log" || true)
rules '{"settings": {"propagation_seconds": 1}}'
step "3/6 provision again: the new instance (tag app=keyless-demo-app) already carries the profile" \
  playbooks/provision.yml -e @demo/vars.yml
step "4/6 provision once more: nothing left to change" playbooks/provision.yml -e @demo/vars.yml
if ! grep -Eq 'localhost +: ok=[0-9]+ +changed=0 ' "$log"; then
  echo "demo: the re-run reported changes: provisioning is not idempotent" >&2
  exit 1
fi
step "5/6 on the instance: credentials with no keys; then the pitfalls keyless.aws catches" demo/show.yml
summary=$(sed -n '/TASK \[Summary\]/,/^$/p' "$log")
"$playbook" demo/cleanup.yml > "$log" || { cat "$log"; exit 1; }
step "6/6 tear down: instances gone, now the role's absent state removes profile and role" \
  playbooks/provision.yml -e @demo/vars.yml -e keyless_state=absent

printf '\n\033[1m== demo done\033[0m\n'
echo "ATTACH AT LAUNCH"
while IFS= read -r line; do echo "  $line"; done <<< "$launched"
echo "$summary" | sed -n 's/^ *"\(.*\)",\{0,1\}$/\1/p' | sed 's/\\"/"/g'
echo "provisioning re-run: changed=0 (idempotent); teardown: done"
