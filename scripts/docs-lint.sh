#!/usr/bin/env bash
# Documentation gate (after `make venv`):
#  1. `antsibull-docs lint-collection-docs --plugin-docs .`: docs config, links, every plugin's
#     DOCUMENTATION/EXAMPLES/RETURN schema, semantic markup and generated RST (offline).
#  2. `.venv/bin/ansible-doc` renders every module, documented plugin and role (with
#     meta/argument_specs.yml) of ours, as a user runs it from this folder (ansible.cfg resolves
#     keyless.aws.* and amazon.aws.*).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=$root/.venv
[ -x "$venv/bin/antsibull-docs" ] || { echo "docs-lint: $venv/bin/antsibull-docs missing: run 'make venv' first" >&2; exit 2; }
[ -e .build/collections/ansible_collections/amazon/aws ] || bash scripts/link-collections.sh "$venv" .build/collections
export PATH=$venv/bin:$PATH ANSIBLE_NOCOLOR=1
failed=0

# 1. antsibull-docs copies our collection and its dependencies (found with `ansible-galaxy
# collection list`) to a temporary tree. It copies a collection that lies inside a git checkout
# with `git ls-files`, which sees nothing in ignored folders such as .build/ and .venv/. So
# amazon.aws is listed at its real place in the venv's site-packages, and git is told not to look
# for a repository above site-packages (GIT_CEILING_DIRECTORIES): amazon.aws is copied whole.
amazon=$(readlink -f .build/collections/ansible_collections/amazon/aws)
site=${amazon%/ansible_collections/amazon/aws}
echo "==> antsibull-docs lint-collection-docs --plugin-docs ."
if ANSIBLE_CONFIG=$root/ansible.cfg ANSIBLE_COLLECTIONS_PATH=$site GIT_CEILING_DIRECTORIES=$site \
    antsibull-docs lint-collection-docs --plugin-docs .; then
  echo "docs-lint: antsibull-docs clean"
else
  echo "docs-lint: antsibull-docs FAILED"
  failed=1
fi

# 2. ansible-doc, the way the README tells users to read the docs.
export ANSIBLE_CONFIG=$root/ansible.cfg
echo "==> ansible-doc for every plugin in plugins/"
checked=0
for dir in plugins/*/; do
  kind=$(basename "$dir")
  case $kind in
    modules) type=module ;;
    filter|test) type=$kind ;;
    action|cache|callback|connection|inventory|lookup|become|cliconf|httpapi|netconf|shell|strategy|vars) type=$kind ;;
    *) continue ;;  # module_utils, doc_fragments, plugin_utils: no docs of their own
  esac
  names=()
  for f in "$dir"*; do
    base=$(basename "$f")
    case $type:$base in
      module:_*|*:__init__.py) ;;
      module:*.py) names+=("${base%.py}") ;;
      filter:*.yml|filter:*.yaml|test:*.yml|test:*.yaml) names+=("${base%.*}") ;;  # docs of Jinja plugins
      filter:*|test:*) ;;
      *:*.py) names+=("${base%.py}") ;;
    esac
  done
  for name in ${names[@]+"${names[@]}"}; do
    fqcn=keyless.aws.$name
    checked=$((checked + 1))
    if out=$(ansible-doc -t "$type" "$fqcn" 2>&1) \
        && grep -q "^> ${type^^} $fqcn " <<<"$out" \
        && ! grep -qE '^\[(WARNING|ERROR)\]' <<<"$out"; then
      echo "  ok      $type $fqcn"
    else
      echo "  FAILED  $type $fqcn: ansible-doc -t $type $fqcn says:"
      head -20 <<<"$out" | awk '{ print "            " $0 }'
      failed=1
    fi
  done
done

for spec in roles/*/meta/argument_specs.yml; do
  [ -e "$spec" ] || continue
  fqcn=keyless.aws.$(basename "$(dirname "$(dirname "$spec")")")
  checked=$((checked + 1))
  if out=$(ansible-doc -t role "$fqcn" 2>&1) \
      && grep -q "^> ROLE: \*$fqcn\* " <<<"$out" \
      && ! grep -qE '^\[(WARNING|ERROR)\]' <<<"$out"; then
    echo "  ok      role $fqcn"
  else
    echo "  FAILED  role $fqcn: ansible-doc -t role $fqcn says:"
    head -20 <<<"$out" | awk '{ print "            " $0 }'
    failed=1
  fi
done

if [ "$failed" -eq 0 ]; then
  echo "docs-lint: passed (antsibull-docs clean, $checked plugin(s) and role(s) render with ansible-doc)"
else
  echo "docs-lint: FAILED"
fi
exit "$failed"
