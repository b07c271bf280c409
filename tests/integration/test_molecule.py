"""The molecule scenarios of extensions/molecule/, each against a sandbox this test starts.

molecule runs from the collection root (collection mode: extensions/molecule/config.yml is the
shared base, each scenario's molecule.yml merges on top) with the sandbox's environment, so
every AWS call of prepare, converge, idempotence, verify and cleanup goes to the sandbox on
loopback. Offline: prerun false and the dependency step disabled in config.yml, collections
from .build/collections.
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


def test_scenarios_exist():
    assert "default" in SCENARIOS and "absent" in SCENARIOS


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario(scenario, sandbox, tmp_path):
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
