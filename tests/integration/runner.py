"""ansible-playbook against the sandbox, as a user would run it."""

import json
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
    log_name = name or os.path.basename(os.path.dirname(playbook))
    deprecations = watch_deprecations(env, log_name)
    env.update(extra_env or {})
    command = [os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local",
               "-e", "ansible_python_interpreter=" + sys.executable, playbook] + list(args)
    completed = subprocess.run(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=timeout, check=False)
    output = completed.stdout.decode("utf-8", "replace")
    log_path = os.path.join(OUTPUT, log_name + ".log")
    with open(log_path, "w") as handle:
        handle.write(output)
    check_deprecations(deprecations, log_path)
    return PlaybookRun(command, completed.returncode, output, log_path)


def watch_deprecations(env, log_name):
    """Sets ``env`` up for the test callback that records every deprecation a keyless.aws
    module's result carries (callback_plugins/keyless_deprecations.py); returns its file."""
    os.makedirs(OUTPUT, exist_ok=True)
    path = os.path.join(OUTPUT, log_name + ".deprecations.jsonl")
    if os.path.exists(path):
        os.unlink(path)
    plugins = os.path.join(ROOT, "tests", "integration", "callback_plugins")
    env["ANSIBLE_CALLBACK_PLUGINS"] = os.pathsep.join(filter(None, [plugins, env.get("ANSIBLE_CALLBACK_PLUGINS")]))
    enabled = [name for name in ("keyless_deprecations", env.get("ANSIBLE_CALLBACKS_ENABLED")) if name]
    env["ANSIBLE_CALLBACKS_ENABLED"] = ",".join(enabled)
    env["KEYLESS_DEPRECATIONS_FILE"] = path
    return path


def check_deprecations(path, log_path):
    """Fails the test when our own code triggered an ansible-core deprecation: it would break on the
    core version that removes the feature."""
    if os.path.exists(path):
        with open(path) as handle:
            found = [json.loads(line) for line in handle if line.strip()]
        assert not found, "keyless.aws modules triggered deprecations (log {0}):\n{1}".format(
            log_path, "\n".join("{action} ({task}): {msg}".format(**entry) for entry in found))


def run_written(sandbox, tmp_path, text, name, variables, *args):
    """A playbook written from ``text`` into ``tmp_path`` and run with ``variables`` (a JSON vars
    file, so their types reach it as given) plus ``result_file``, a file the playbook may write its
    results to: returns (PlaybookRun, the JSON the playbook wrote there, or None). The sandbox's
    request log is cleared first, so ``sandbox.calls()`` afterwards is this run's. The run must
    succeed (the caller tests failures through what the playbook wrote)."""
    playbook = tmp_path / (name + ".yml")
    playbook.write_text(text)
    result_file = tmp_path / (name + ".json")
    vars_file = tmp_path / (name + "-vars.json")
    vars_file.write_text(json.dumps(dict(variables, result_file=str(result_file))))
    sandbox.app.clear_log()
    run = run_playbook(sandbox, str(playbook), "-e", "@" + str(vars_file), *args, name=name)
    assert run.returncode == 0, "{0} failed (log: {1}):\n{2}".format(name, run.log_path, run.output[-4000:])
    return run, (json.loads(result_file.read_text()) if result_file.exists() else None)


def plain(value):
    """ansible-inventory's JSON without ansible-core 2.19's {"__ansible_unsafe": ...} wrappers (as
    AWX stores an inventory it imported)."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return dict((key, plain(item)) for key, item in value.items())
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value
