#!/usr/bin/env bash
# `make demo`: runs inside `python -m sandbox run`, so AWS_URL, the dummy credentials and
# KEYLESS_SANDBOX_URL point at the embedded sandbox. The whole job, no AWS account:
# provision (the real playbooks/provision.yml), launch, attach, credentials on the instance,
# the common pitfalls, idempotence; then IMDSv2 all the way on a legacy fleet (audit.yml's
# evidence, harden.yml's staged rollout, account-level enforcement); teardown.
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
step "1/16 provision: a role EC2 may assume (S3 read-only), its profile, an IMDSv2-only launch template that carries the profile" \
  playbooks/provision.yml -e @demo/vars.yml
step "2/16 attach at launch: an application instance from the template, the profile on it from its first second" \
  demo/launch.yml
launched=$(grep -Eo '(instance i-[0-9a-f]+ launched from template [^"]*|EC2 (did not know|knew) the profile[^"]*)' "$log" || true)
rules '{"settings": {"propagation_seconds": 1}}'
step "3/16 provision again: the new instance (tag app=keyless-demo-app) already carries the profile" \
  playbooks/provision.yml -e @demo/vars.yml
step "4/16 provision once more: nothing left to change" playbooks/provision.yml -e @demo/vars.yml
if ! grep -Eq 'localhost +: ok=[0-9]+ +changed=0 ' "$log"; then
  echo "demo: the re-run reported changes: provisioning is not idempotent" >&2
  exit 1
fi
step "5/16 on the instance: credentials with no keys; then the pitfalls keyless.aws catches" demo/show.yml
summary=$(sed -n '/TASK \[Summary\]/,/^$/p' "$log")

# IMDSv2 all the way, on evidence: what `debug` printed, without the JSON quoting.
said() { grep -E "$1" "$log" | sed 's/^ *"//; s/",\{0,1\}$//; s/^ *//' | sed 's/\\"/"/g'; }
report=$(mktemp -d)
trap 'rm -f "$log"; rm -rf "$report"' EXIT
batch='{"harden_instance_filters": {"tag:app": "keyless-demo-batch"}, "harden_canary_percent": 50}'
step "6/16 a legacy fleet: three batch instances allow IMDSv1, old software on one of them uses it" demo/legacy.yml
step "7/16 playbooks/audit.yml: the IMDSv1 use, from CloudWatch's MetadataNoToken" \
  playbooks/audit.yml -e audit_report_dir="$report"
evidence=$(said 'finding\(s\) in ' | sed 's/^msg": "//')
step "8/16 playbooks/harden.yml --check --diff: every stage predicted, the IMDSv1 user skipped" \
  playbooks/harden.yml --check --diff -e "$batch"
predicted=$(said '^ *"(stages|skipped) ')
step "9/16 playbooks/harden.yml: the canary, then the rest; the IMDSv1 user left as it is" \
  playbooks/harden.yml -e "$batch"
hardened=$(said '^ *"(instances|stages|skipped) ')
step "10/16 the old software fixed (it asks for a token): enforced too, and the account enforces IMDSv2 on every launch" \
  playbooks/harden.yml -e "$batch" -e '{"harden_force_imdsv1_users": true, "harden_account_defaults": true,
    "harden_http_tokens_enforced": "enabled", "harden_launch_templates": ["keyless-demo-app"]}'
forced=$(said '^ *"(instances|account default) ')
step "11/16 enforced: IMDSv2 served, IMDSv1 refused, a launch that would allow IMDSv1 refused" demo/enforced.yml
enforced=$(said '^ *"(fixed software|launch allowing)')

# From keys to keyless: an instance whose old software still reads an IAM user's key.
keys_dir=$(mktemp -d)
trap 'rm -f "$log"; rm -rf "$report"; kill "$(cat "$keys_dir/quiet.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$keys_dir"' EXIT
.venv/bin/python demo/legacy_keys.py setup "$keys_dir"
software_before=$(.venv/bin/python demo/legacy_keys.py whoami "$keys_dir")
step "12/16 playbooks/audit.yml with the instance reached: the key, and which programs take it before the role" \
  playbooks/audit.yml -i "$keys_dir/hosts.yml" -e audit_key_hosts_become=false -e audit_report_dir="$report"
keys_found=$(.venv/bin/python -c 'import json, sys
for f in json.load(open(sys.argv[1]))["findings"]:
    if f["kind"] == "instance_static_keys":
        print(f["detail"])' "$report/keyless-audit.json")
retire=(playbooks/retire_keys.yml -i "$keys_dir/hosts.yml"
        -e '{"retire_keys_become": false, "retire_keys_canary_percent": 100, "retire_keys_soak_hours": 0}')
step "13/16 playbooks/retire_keys.yml --check --diff: the key in ~/.aws/credentials and in a service's environment, its owner, the role that replaces it" \
  "${retire[@]}" --check --diff
keys_plan=$(said '"msg": "(key \.\.\.|canaries)' | sed 's/^msg": "//')
step "14/16 playbooks/retire_keys.yml: a role with the owner's permissions, its credentials proven, the key off the instance, then retired (soak 0 h here; 168 by default)" \
  "${retire[@]}"
keys_done=$(said '"msg": "key \.\.\..*(deactivate|keep)' | sed 's/^msg": "//')
software_after=$(.venv/bin/python demo/legacy_keys.py whoami "$keys_dir")
key_status=$(.venv/bin/python demo/legacy_keys.py status)
step "15/16 playbooks/retire_keys.yml again: nothing left to change" "${retire[@]}"
if grep -Eq 'changed=[1-9]' <(sed -n '/PLAY RECAP/,$p' "$log"); then
  echo "demo: the re-run of retire_keys.yml reported changes" >&2
  exit 1
fi
"$playbook" demo/cleanup.yml > "$log" || { cat "$log"; exit 1; }
step "16/16 tear down: instances gone, now the role's absent state removes profile and role" \
  playbooks/provision.yml -e @demo/vars.yml -e keyless_state=absent

printf '\n\033[1m== demo done\033[0m\n'
echo "ATTACH AT LAUNCH"
while IFS= read -r line; do echo "  $line"; done <<< "$launched"
echo "$summary" | sed -n 's/^ *"\(.*\)",\{0,1\}$/\1/p' | sed 's/\\"/"/g'
echo "IMDSV2 ALL THE WAY"
echo "  audit: $evidence"
echo "  harden --check --diff predicted:"
while IFS= read -r line; do echo "    $line"; done <<< "$predicted"
echo "  harden did:"
while IFS= read -r line; do echo "    $line"; done <<< "$hardened"
echo "  the old software fixed, its instance forced, the account enforcing:"
while IFS= read -r line; do echo "    $line"; done <<< "$forced"
while IFS= read -r line; do echo "    $line"; done <<< "$enforced"
echo "FROM KEYS TO KEYLESS"
echo "  before: the old software takes $software_before"
echo "  audit: $keys_found"
echo "  retire_keys --check --diff planned:"
while IFS= read -r line; do echo "    $line"; done <<< "$keys_plan"
echo "  retire_keys did:"
while IFS= read -r line; do echo "    $line"; done <<< "$keys_done"
echo "  after: the old software takes $software_after"
echo "  the key in IAM: $key_status; retire_keys re-run: changed=0"
echo "provisioning re-run: changed=0 (idempotent); teardown: done"
