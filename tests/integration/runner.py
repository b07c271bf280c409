"""ansible-playbook against the sandbox, as a user would run it."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
OUTPUT = os.path.join(ROOT, "tests", "output", "integration")


class PlaybookRun:
    def __init__(self, args, returncode, output, log_path):
        self.args = args
        self.returncode = returncode
        self.output = output
        self.log_path = log_path

    def __repr__(self):
        return "PlaybookRun(rc={0}, log={1})".format(self.returncode, self.log_path)


def run_playbook(sandbox, playbook, *args, name=None, extra_env=None, timeout=900):
    """Run ansible-playbook against the sandbox; the output also goes to tests/output/.

    Returns a PlaybookRun; the caller asserts on ``returncode``. Extra ``args`` go to
    ansible-playbook as given (``--check``, ``--diff``, ``-e``, ``-vvv``...).
    """
    env = dict(os.environ)
    env.update(sandbox.env())
    env.update(
        KEYLESS_SANDBOX_URL=sandbox.url,
        ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCAL_TEMP=os.path.join(ROOT, ".build", "ansible-tmp"),
        ANSIBLE_HOME=os.path.join(ROOT, ".build", "ansible-home"),
        PYTHONPATH=os.path.join(ROOT, "tests"),
    )
    env.update(extra_env or {})
    command = [os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local",
               "-e", "ansible_python_interpreter=" + sys.executable, playbook] + list(args)
    completed = subprocess.run(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=timeout, check=False)
    output = completed.stdout.decode("utf-8", "replace")
    os.makedirs(OUTPUT, exist_ok=True)
    log_name = name or os.path.basename(os.path.dirname(playbook))
    log_path = os.path.join(OUTPUT, log_name + ".log")
    with open(log_path, "w") as handle:
        handle.write(output)
    return PlaybookRun(command, completed.returncode, output, log_path)
