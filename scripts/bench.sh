#!/usr/bin/env bash
# `make bench`: keyless.aws measured side by side against the amazon.aws way, on a sandbox the
# bench starts itself (bench/README.md). Installs the bench's own requirements (matplotlib, for
# the plot) into .venv, then runs bench/run.py; arguments go to it, for example
#   scripts/bench.sh --sizes 10,100 --reps 5
# Results: the table on stdout and in bench/results/table.md, raw figures in
# bench/results/bench.json, the plot in bench/results/bench.png (bench/results/ is git-ignored).
# `make bench-aws`: scripts/bench.sh --aws [arguments of bench/aws.py]: the same contenders under
# EC2's rate limits (the sandbox's AWS-like mode); table in bench/results/aws-table.md, raw
# figures in bench/results/aws.json. It needs no plotting library.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
[ -x "$venv/bin/ansible-playbook" ] || { echo "bench: $venv/bin/ansible-playbook missing: run 'make venv' first" >&2; exit 2; }
[ -e .build/collections/ansible_collections/amazon/aws ] || bash scripts/link-collections.sh "$venv" .build/collections
export ANSIBLE_CONFIG=$PWD/ansible.cfg
if [ "${1:-}" = "--aws" ]; then
  shift
  exec "$venv/bin/python" bench/aws.py "$@"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
exec "$venv/bin/python" bench/run.py "$@"
