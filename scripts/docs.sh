#!/usr/bin/env bash
# `make docs`: the documentation site, offline, in .build/docs/html/ (after `make venv`).
#
#   .build/docs/src/README.md        the README (the site's first page; its docs/... links work)
#   .build/docs/src/docs/*.md        the user guide, as written in docs/
#   .build/docs/src/collection/      module, filter and role reference: `antsibull-docs collection
#                                    --use-current` from the plugins' own DOCUMENTATION/EXAMPLES/
#                                    RETURN and roles/*/meta/argument_specs.yml
#   .build/docs/src/index.rst        from docs/site/index.rst (conf.py is docs/site/conf.py)
# then Sphinx (no -W: references into docs.ansible.com cannot resolve offline and stay plain
# text). The linting of the same docs is scripts/docs-lint.sh.
#
# Usage: scripts/docs.sh [extra sphinx-build args]   (KEYLESS_DOCS_OUT=DIR builds elsewhere)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=$root/.venv
out=${KEYLESS_DOCS_OUT:-$root/.build/docs}
src=$out/src
html=$out/html
[ -x "$venv/bin/antsibull-docs" ] && [ -x "$venv/bin/sphinx-build" ] \
  || { echo "docs: antsibull-docs / sphinx-build missing from $venv: run 'make venv' first" >&2; exit 2; }
[ -e .build/collections/ansible_collections/amazon/aws ] || bash scripts/link-collections.sh "$venv" .build/collections
export PATH=$venv/bin:$PATH ANSIBLE_NOCOLOR=1
started=$SECONDS

rm -rf "$src"
mkdir -p "$src/docs" "$src/collection"
# antsibull-docs writes only into a folder that nobody else can write to.
chmod 755 "$src/collection"

echo "==> antsibull-docs collection --use-current keyless.aws"
ANSIBLE_CONFIG=$root/ansible.cfg ANSIBLE_COLLECTIONS_PATH=$root/.build/collections \
  antsibull-docs collection --use-current --squash-hierarchy --fail-on-error \
  --dest-dir "$src/collection" keyless.aws

cp README.md "$src/README.md"
cp docs/*.md "$src/docs/"
cp docs/site/index.rst "$src/index.rst"

echo "==> sphinx-build -b html (conf: docs/site/conf.py)"
log=$out/sphinx.log
set +e
sphinx-build -b html -c docs/site -d "$out/doctrees" "$@" "$src" "$html" 2>"$log"
rc=$?
set -e
warnings=$(grep -c 'WARNING' "$log" || true)
if [ "$rc" -ne 0 ]; then
  cat "$log" >&2
  echo "docs: FAILED (sphinx-build exit $rc; log ${log#"$root"/})"
  exit "$rc"
fi
pages=$(find "$html" -name '*.html' | wc -l)
echo "docs: built ${html#"$root"/}/index.html ($pages pages, $warnings Sphinx warning(s) in ${log#"$root"/}, $((SECONDS - started))s)"
