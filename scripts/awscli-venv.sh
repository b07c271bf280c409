#!/usr/bin/env bash
# The AWS CLI in a virtualenv of its own, .build/awscli/bin/aws, holding exactly the pinned
# closure of scripts/requirements-awscli.txt (awscli 1.x pins docutils below what .venv's
# antsibull-docs and Sphinx need, so it cannot go into .venv). Molecule's verify steps run it;
# tests/integration/test_molecule.py calls this script before the scenarios.
# Idempotent: the venv carries a stamp (the sha256 of the requirements and of this script, and
# the interpreter's version). When the stamp matches and the venv's Python runs, nothing is done
# (well under a second); otherwise the venv is made again from scratch, so it never holds more
# than the pins. Runs at the same time (pytest -n 2) wait for each other on a lock.
# Usage: scripts/awscli-venv.sh   (PYTHON: the interpreter, 3.11 or newer; default python3)
# Prints the path of the aws executable on stdout; what it installs goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
python=${PYTHON:-python3}
build=$root/.build
dest=$build/awscli
requirements=scripts/requirements-awscli.txt
stamp=$dest/.keyless-stamp

want=$(
  sha256sum "$requirements" scripts/awscli-venv.sh
  "$python" -c 'import sys; sys.exit("awscli-venv: keyless.aws needs Python 3.11 or newer (found %s)" % sys.version.split()[0]) if sys.version_info < (3, 11) else print(sys.version)'
)

current() {
  [ -f "$stamp" ] && [ -x "$dest/bin/aws" ] && [ "$(cat "$stamp")" = "$want" ] && "$dest/bin/python" -c '' 2>/dev/null
}

if current; then
  echo "$dest/bin/aws"
  exit 0
fi

mkdir -p "$build"
exec 9>"$build/awscli.lock"
if command -v flock >/dev/null; then flock 9; fi
# Another run may have made it while this one waited for the lock.
if current; then
  echo "$dest/bin/aws"
  exit 0
fi

echo "awscli-venv: making $dest with $(grep -E '^awscli==' "$requirements") ($("$python" -c 'import sys; print(sys.version.split()[0])'))" >&2
rm -f "$stamp"
rm -rf "$dest"
"$python" -m venv "$dest"
"$dest/bin/python" -m pip install --quiet --disable-pip-version-check --require-virtualenv --no-deps -r "$requirements" >&2
# --no-deps installs only the pins: a dependency missing from the list fails here, not later.
"$dest/bin/python" -m pip check --disable-pip-version-check >&2
"$dest/bin/aws" --version >&2
printf '%s\n' "$want" > "$stamp"
echo "$dest/bin/aws"
