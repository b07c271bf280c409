#!/usr/bin/env bash
# The Event-Driven Ansible runtime, built on demand: ansible-rulebook in a virtualenv of its own,
# .build/rulebook-venv, and the collections it reads in .build/rulebook-collections.
#
# Why apart from .venv: ansible-rulebook's `amazon.aws.aws_sqs_queue` event source is in
# amazon.aws >= 11.1, which comes with the `ansible` 14 package (Python >= 3.12), and its Drools
# rule engine (drools_jpy) runs in a JVM (a JDK >= 17). .venv is Python 3.11.
#
# What it makes:
#   .build/rulebook-venv             Python >= 3.12, exactly the pins of
#                                    scripts/requirements-rulebook.txt (ansible-rulebook,
#                                    ansible-core for ansible-galaxy and run_playbook,
#                                    aiobotocore for the event source, boto3 for the playbooks)
#   .build/rulebook-collections/ansible_collections/amazon/aws
#                                    amazon.aws 11.4.0, extracted from the hash-pinned `ansible`
#                                    wheel of scripts/requirements-rulebook-collections.txt (only
#                                    that collection; Galaxy is out of reach)
#   .build/rulebook-collections/ansible_collections/keyless/aws -> this checkout
#   .build/rulebook-venv/keyless-env JAVA_HOME and ANSIBLE_COLLECTIONS_PATH (KEY=VALUE lines)
#   .build/rulebook-venv/bin/keyless-rulebook
#                                    ansible-rulebook with that environment and the venv's bin/
#                                    first on PATH (ansible-galaxy, ansible-playbook)
#
# Finding Python >= 3.12: $RULEBOOK_PYTHON, then python3.12 / python3.13 / python3.14 / python3
# on PATH, then pyenv's versions ($(pyenv root), $PYENV_ROOT or ~/.pyenv). None: a message naming
# what to install (exit 3). Finding a JDK >= 17 (with its libjvm.so, which jpy loads):
# $RULEBOOK_JAVA_HOME, $JAVA_HOME, /usr/lib/jvm/java-17-*, java-21-*, the other JDKs there, the
# `java` on PATH. None: as root with apt-get, Debian's openjdk-17-jre-headless (or 21, 25, the
# first the package lists have) is installed; otherwise a message naming the package (exit 3).
#
# Idempotent: a stamp (sha256 of the requirements and of this script, the interpreter's version,
# the JDK) makes a current runtime a no-op (well under a second); otherwise the venv is made again
# from scratch. Runs at the same time wait for each other on a lock.
# Usage: scripts/rulebook-venv.sh
# Prints the path of keyless-rulebook on stdout; what it does goes to stderr.
# Exit: 0 ready, 3 the machine lacks Python >= 3.12 or a JDK >= 17 (the message says what to
# install), anything else: the build failed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=$root/.build
dest=$build/rulebook-venv
collections=$build/rulebook-collections
cache=$build/rulebook-cache
requirements=scripts/requirements-rulebook.txt
collection_requirements=scripts/requirements-rulebook-collections.txt
amazon_aws_version=11.4.0
stamp=$dest/.keyless-stamp
MISSING=3

missing() {
  echo "rulebook-venv: $*" >&2
  exit "$MISSING"
}

# ---- Python >= 3.12 -------------------------------------------------------------------------
python_ok() {
  "$1" -c 'import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null
}

find_python() {
  local candidate pyenv_root
  if [ -n "${RULEBOOK_PYTHON:-}" ]; then
    python_ok "$RULEBOOK_PYTHON" && { echo "$RULEBOOK_PYTHON"; return 0; }
    echo "rulebook-venv: RULEBOOK_PYTHON=$RULEBOOK_PYTHON is not a Python 3.12 or newer with venv and ensurepip" >&2
    return 1
  fi
  for candidate in python3.12 python3.13 python3.14 python3; do
    if command -v "$candidate" >/dev/null && python_ok "$(command -v "$candidate")"; then
      command -v "$candidate"
      return 0
    fi
  done
  pyenv_root=$(pyenv root 2>/dev/null || true)
  for pyenv_root in "$pyenv_root" "${PYENV_ROOT:-}" "$HOME/.pyenv"; do
    [ -n "$pyenv_root" ] || continue
    for candidate in "$pyenv_root"/versions/3.12.*/bin/python3 "$pyenv_root"/versions/3.13.*/bin/python3 \
                     "$pyenv_root"/versions/3.14.*/bin/python3; do
      if [ -x "$candidate" ] && python_ok "$candidate"; then
        echo "$candidate"
        return 0
      fi
    done
  done
  return 1
}

# ---- a JDK >= 17 ------------------------------------------------------------------------------
java_ok() {  # a Java home whose java is 17 or newer and that has the libjvm.so jpy loads
  local home=$1 version major
  [ -x "$home/bin/java" ] || return 1
  [ -f "$home/lib/server/libjvm.so" ] || return 1
  version=$("$home/bin/java" -version 2>&1 | sed -n 's/.*version "\([0-9][0-9]*\).*/\1/p' | head -n 1)
  major=${version:-0}
  [ "$major" -ge 17 ]
}

find_java_home() {
  local candidate java
  for candidate in "${RULEBOOK_JAVA_HOME:-}" "${JAVA_HOME:-}" /usr/lib/jvm/java-17-* /usr/lib/jvm/java-21-* \
                   /usr/lib/jvm/*; do
    [ -n "$candidate" ] && [ -d "$candidate" ] || continue
    if java_ok "$candidate"; then
      (cd "$candidate" && pwd -P)
      return 0
    fi
  done
  if java=$(command -v java 2>/dev/null); then
    candidate=$(dirname "$(dirname "$(readlink -f "$java")")")
    if java_ok "$candidate"; then
      echo "$candidate"
      return 0
    fi
  fi
  return 1
}

install_jdk() {  # as root with apt-get: Debian's headless JRE, the first version the lists have
  local package
  [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null || return 1
  for attempt in cached updated; do
    if [ "$attempt" = updated ]; then
      echo "rulebook-venv: apt-get update (to find a JDK package)" >&2
      apt-get update -qq >&2 || return 1
    fi
    for package in openjdk-17-jre-headless openjdk-21-jre-headless openjdk-25-jre-headless; do
      if apt-cache show "$package" >/dev/null 2>&1; then
        echo "rulebook-venv: installing Debian's $package (ansible-rulebook needs a JDK >= 17)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$package" >&2 || return 1
        return 0
      fi
    done
  done
  return 1
}

python=$(find_python) || missing "ansible-rulebook and amazon.aws 11 need Python 3.12 or newer, and none was found" \
  "(looked at RULEBOOK_PYTHON, python3.12/3.13/3.14/python3 on PATH, pyenv's versions). Install one:" \
  "Debian 13 and Ubuntu 24.04 have it as python3 (plus python3-venv), elsewhere 'pyenv install 3.12';" \
  "or set RULEBOOK_PYTHON=/path/to/python3.12."
java_home=$(find_java_home) || { install_jdk && java_home=$(find_java_home); } || missing \
  "ansible-rulebook needs a JDK 17 or newer (drools_jpy runs the rule engine in a JVM), and none was found" \
  "(looked at RULEBOOK_JAVA_HOME, JAVA_HOME, /usr/lib/jvm, java on PATH). Install Debian's" \
  "openjdk-17-jre-headless ('apt-get install openjdk-17-jre-headless' as root), or set RULEBOOK_JAVA_HOME."

want=$(
  sha256sum "$requirements" "$collection_requirements" scripts/rulebook-venv.sh
  "$python" -c 'import sys; print(sys.version)'
  echo "$java_home"
)
wrapper=$dest/bin/keyless-rulebook

current() {
  [ -f "$stamp" ] && [ -x "$wrapper" ] && [ "$(cat "$stamp")" = "$want" ] && "$dest/bin/python" -c '' 2>/dev/null \
    && [ -f "$collections/ansible_collections/amazon/aws/MANIFEST.json" ]
}

if current; then
  echo "$wrapper"
  exit 0
fi

mkdir -p "$build"
exec 9>"$build/rulebook-venv.lock"
if command -v flock >/dev/null; then flock 9; fi
if current; then  # another run made it while this one waited for the lock
  echo "$wrapper"
  exit 0
fi

started=$SECONDS
echo "rulebook-venv: making $dest with $(grep -E '^ansible-rulebook==' "$requirements")" \
  "($("$python" -c 'import sys; print(sys.version.split()[0])') from $python, JDK $java_home)" >&2
rm -f "$stamp"
rm -rf "$dest"
"$python" -m venv "$dest"
"$dest/bin/python" -m pip install --quiet --disable-pip-version-check --require-virtualenv --no-deps -r "$requirements" >&2
# --no-deps installs only the pins: a dependency missing from the list fails here, not later.
"$dest/bin/python" -m pip check --disable-pip-version-check >&2

# amazon.aws from the hash-checked `ansible` wheel: only that collection is extracted.
mkdir -p "$cache"
"$dest/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
  -r "$collection_requirements" -d "$cache" >&2
wheel=$(grep -oE '^ansible==[0-9.]+' "$collection_requirements" | sed 's/==/-/')-py3-none-any.whl
"$dest/bin/python" - "$cache/$wheel" "$collections" "$amazon_aws_version" <<'PY'
"""Extract ansible_collections/amazon/aws/ of the ansible wheel; check its version."""
import json
import os
import shutil
import sys
import zipfile

wheel, collections, wanted = sys.argv[1:]
prefix = "ansible_collections/amazon/aws/"
target = os.path.join(collections, prefix)
shutil.rmtree(target, ignore_errors=True)
with zipfile.ZipFile(wheel) as archive:
    members = [name for name in archive.namelist() if name.startswith(prefix) and not name.endswith("/")]
    for name in members:
        path = os.path.join(collections, name)
        if not os.path.realpath(path).startswith(os.path.realpath(collections) + os.sep):
            sys.exit("rulebook-venv: refusing a path outside the collections tree: " + name)
        archive.extract(name, collections)
with open(os.path.join(target, "MANIFEST.json"), encoding="utf-8") as handle:
    version = json.load(handle)["collection_info"]["version"]
if version != wanted:
    sys.exit("rulebook-venv: %s carries amazon.aws %s, expected %s" % (os.path.basename(wheel), version, wanted))
source = os.path.join(target, "extensions/eda/plugins/event_source/aws_sqs_queue.py")
if not os.path.isfile(source):
    sys.exit("rulebook-venv: amazon.aws %s has no aws_sqs_queue event source" % version)
print("rulebook-venv: amazon.aws %s (%d files) in %s" % (version, len(members), collections), file=sys.stderr)
PY
mkdir -p "$collections/ansible_collections/keyless"
ln -sfn "$root" "$collections/ansible_collections/keyless/aws"

cat > "$dest/keyless-env" <<EOF
JAVA_HOME=$java_home
ANSIBLE_COLLECTIONS_PATH=$collections
EOF
cat > "$wrapper" <<'EOF'
#!/usr/bin/env bash
# ansible-rulebook with the JDK and the collections scripts/rulebook-venv.sh chose, and this
# venv's ansible-galaxy and ansible-playbook first on PATH.
bin=$(cd "$(dirname "$0")" && pwd)
set -a
# shellcheck disable=SC1091
. "$bin/../keyless-env"
set +a
export PATH="$bin:$PATH"
exec "$bin/ansible-rulebook" "$@"
EOF
chmod +x "$wrapper"

"$wrapper" --version >&2
if ! ANSIBLE_COLLECTIONS_PATH=$collections "$dest/bin/ansible-galaxy" collection list amazon.aws 2>/dev/null \
    | grep -q "amazon.aws *$amazon_aws_version"; then
  echo "rulebook-venv: ansible-galaxy does not see amazon.aws $amazon_aws_version in $collections" >&2
  exit 1
fi
printf '%s\n' "$want" > "$stamp"
echo "rulebook-venv: ready in $((SECONDS - started)) s" >&2
echo "$wrapper"
