#!/usr/bin/env bash
# Lay out the collections tree that ansible.cfg points at:
#   <tree>/ansible_collections/keyless/aws -> this checkout
#   <tree>/ansible_collections/amazon/aws  -> the amazon.aws carried by the venv's `ansible`
set -euo pipefail
venv=${1:?venv}
tree=${2:?tree}
root=$(cd "$(dirname "$0")/.." && pwd)
amazon=$("$venv/bin/python" - <<'PY'
import importlib.util, os
spec = importlib.util.find_spec("ansible_collections")
paths = list(spec.submodule_search_locations)
for p in paths:
    if os.path.isdir(os.path.join(p, "amazon", "aws")):
        print(os.path.join(p, "amazon", "aws"))
        break
else:
    raise SystemExit("amazon.aws not found in the venv: is the `ansible` package installed?")
PY
)
mkdir -p "$tree/ansible_collections/keyless" "$tree/ansible_collections/amazon"
ln -sfn "$root" "$tree/ansible_collections/keyless/aws"
ln -sfn "$amazon" "$tree/ansible_collections/amazon/aws"
