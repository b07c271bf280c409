#!/usr/bin/env bash
# Lay out the collections tree that ansible.cfg points at:
#   <tree>/ansible_collections/keyless/aws -> this checkout
#   <tree>/ansible_collections/amazon/aws  -> the amazon.aws carried by the venv's `ansible`
# With a third argument --amazon-only, only the amazon/aws link is made (scripts/sanity.sh puts
# a copy of this checkout at keyless/aws itself).
set -euo pipefail
venv=${1:?venv}
tree=${2:?tree}
only_amazon=false
[ "${3:-}" = --amazon-only ] && only_amazon=true
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
mkdir -p "$tree/ansible_collections/amazon"
ln -sfn "$amazon" "$tree/ansible_collections/amazon/aws"
$only_amazon && exit 0
mkdir -p "$tree/ansible_collections/keyless"
ln -sfn "$root" "$tree/ansible_collections/keyless/aws"
