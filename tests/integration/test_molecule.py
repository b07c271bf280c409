"""The molecule scenarios of extensions/molecule/, each against a sandbox this test starts.

molecule runs from the collection root (collection mode: extensions/molecule/config.yml is the
shared base, each scenario's molecule.yml merges on top) with the sandbox's environment, so
every AWS call of prepare, converge, idempotence, verify and cleanup goes to the sandbox on
loopback. Offline: prerun false and the dependency step disabled in config.yml, collections
from .build/collections.

The verify steps also ask the AWS CLI (a second opinion beside the _info modules). It lives in a
virtualenv of its own, made by scripts/awscli-venv.sh from scripts/requirements-awscli.txt (awscli
1.x pins docutils below what .venv's docs tools need); the ``aws_cli`` fixture runs the script
once per test process (a no-op in a few milliseconds when the venv is current; about 10 s to make
it) and passes the executable to molecule as KEYLESS_AWS_CLI. Here rather than in `make venv`, so
that `make venv` and every target but the molecule tests stay as fast as they are.
"""

import os
import subprocess
import sys

import pytest

from runner import OUTPUT, ROOT

SCENARIOS_DIR = os.path.join(ROOT, "extensions", "molecule")
SCENARIOS = sorted(
    name for name in os.listdir(SCENARIOS_DIR)
    if os.path.isfile(os.path.join(SCENARIOS_DIR, name, "molecule.yml"))
)
BIN = os.path.dirname(sys.executable)
AWSCLI_SCRIPT = os.path.join(ROOT, "scripts", "awscli-venv.sh")
AWSCLI_REQUIREMENTS = os.path.join(ROOT, "scripts", "requirements-awscli.txt")


def _awscli_venv():
    """Run scripts/awscli-venv.sh (with this interpreter as the venv's base): (path of aws, stderr)."""
    env = dict(os.environ, PYTHON=sys.executable)
    completed = subprocess.run(["bash", AWSCLI_SCRIPT], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=600, check=False)
    stderr = completed.stderr.decode("utf-8", "replace")
    if completed.returncode != 0:
        pytest.fail("scripts/awscli-venv.sh failed (exit {0}):\n{1}".format(completed.returncode, stderr[-4000:]))
    return completed.stdout.decode().strip(), stderr


@pytest.fixture(scope="session")
def aws_cli():
    """The AWS CLI of .build/awscli, made or refreshed once per test process."""
    path = _awscli_venv()[0]
    assert os.access(path, os.X_OK), path
    return path


def test_scenarios_exist():
    assert "default" in SCENARIOS and "absent" in SCENARIOS


def test_awscli_venv_holds_the_pins_and_is_current(aws_cli):
    """The CLI's venv holds exactly the pinned closure, and a second run of the script does nothing."""
    with open(AWSCLI_REQUIREMENTS) as handle:
        pinned = {line.strip().lower() for line in handle if line.strip() and not line.startswith("#")}
    assert all("==" in pin for pin in pinned), pinned
    python = os.path.join(os.path.dirname(aws_cli), "python")
    listing = ("import importlib.metadata as m; "
               "print('\\n'.join('{0}=={1}'.format(d.metadata['Name'], d.version) for d in m.distributions()))")
    found = subprocess.run([python, "-c", listing], stdout=subprocess.PIPE, check=True).stdout.decode().split()
    # pip (and setuptools before Python 3.12) come with the venv itself, not from the list.
    assert {line.lower() for line in found if not line.lower().startswith(("pip==", "setuptools=="))} == pinned
    again, stderr = _awscli_venv()
    assert (again, stderr) == (aws_cli, "")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario(scenario, sandbox, tmp_path, aws_cli):
    env = dict(os.environ)
    env.update(sandbox.env())
    build = os.path.join(ROOT, ".build")
    env.update(
        KEYLESS_SANDBOX_URL=sandbox.url,
        PATH=BIN + os.pathsep + env.get("PATH", ""),
        ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=os.path.join(build, "collections"),
        ANSIBLE_LOCAL_TEMP=os.path.join(build, "ansible-tmp"),
        ANSIBLE_HOME=os.path.join(build, "ansible-home"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        NO_COLOR="1",
        PY_COLORS="0",
        MOLECULE_EPHEMERAL_DIRECTORY=str(tmp_path / "molecule"),
        PYTHONPATH=os.path.join(ROOT, "tests"),
        KEYLESS_AWS_CLI=aws_cli,
    )
    command = [os.path.join(BIN, "molecule"), "test", "-s", scenario]
    completed = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=900, check=False)
    output = completed.stdout.decode("utf-8", "replace")
    os.makedirs(OUTPUT, exist_ok=True)
    log_path = os.path.join(OUTPUT, "molecule-{0}.log".format(scenario))
    with open(log_path, "w") as handle:
        handle.write(output)
    assert completed.returncode == 0, "molecule scenario {0} failed (full log: {1}):\n{2}".format(
        scenario, log_path, output[-8000:])
