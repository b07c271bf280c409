"""What the reliability tests share (faults, races, interruption, bad input, nothing lost,
secrets): building a small world in the sandbox, running playbooks with a variables file,
reading their results, and the figures they report.

Figures (faults injected and survived, races run, bad inputs tried, state diffs found) are
appended to tests/output/integration/reliability-figures.jsonl, one JSON line per test, and
printed (``pytest -s`` shows them).
"""

import contextlib
import importlib
import io
import json
import os
import re
import time
import types

from runner import BIN, OUTPUT, ROOT, run_playbook
from sandbox.seed import launch_with

RELIABILITY = os.path.join(ROOT, "tests", "integration", "playbooks", "reliability")
AMI = "ami-1e749f67"  # one of moto's default images
ACCOUNT = "123456789012"
FIGURES = os.path.join(OUTPUT, "reliability-figures.jsonl")
EC2_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
MUTATING = re.compile(r"^(?!(Describe|Get|List))")
RECAP = re.compile(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def profile_arn(name, path="/"):
    return "arn:aws:iam::{0}:instance-profile{1}{2}".format(ACCOUNT, path, name)


def make_role(iam, name, trust=None):
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust or EC2_TRUST))["Role"]


def make_profile(iam, name, role=None):
    profile = iam.create_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    if role:
        iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=role)
    return profile


def launch(ec2, count, profile=None, tags=None, wait=True, timeout=30.0, **kwargs):
    """``count`` instances in one RunInstances call, sorted ids, launched as a careful client
    launches them: the call is retried while EC2 does not know ``profile`` yet (the sandbox, like
    EC2, refuses a profile made or given its role a moment ago: tests/sandbox/rules.py), and
    (``wait``) the instances are waited for until they run (they are ``pending`` for a moment, as
    on EC2, and EC2 associates a profile only with a running or stopped instance).

    A test that launches with a profile it made in its setup should rather ``settle`` it
    (``sandbox.rules.settle(name)``: a profile EC2 knows, as minutes after it was made), so that
    the retries here are a safety net, not a second of sleeping."""
    kwargs.update(ImageId=AMI, InstanceType="t3.micro", MinCount=count, MaxCount=count)
    if profile:
        kwargs["IamInstanceProfile"] = {"Name": profile}
    if tags:
        kwargs["TagSpecifications"] = [{"ResourceType": "instance",
                                        "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
    return sorted(i["InstanceId"] for i in launch_with(ec2, wait, timeout, **kwargs))


def settled_snapshot(sandbox, timeout=30.0):
    """``sandbox_snapshot.snapshot`` once no association is ``associating`` or ``disassociating``.

    EC2 (and so the sandbox, tests/sandbox/moto_fixes.py) shows an association in one of these
    states for a moment after the call that made or removed it; a module that does not wait for
    the end (``wait: false``, a forced profile delete) has done its part when the call is
    accepted. To compare what is left, look as a careful client looks: once EC2 has finished.
    The snapshot's reads are the sandbox's own (not logged, never faulted)."""
    from sandbox_snapshot import snapshot

    deadline = time.monotonic() + timeout
    while True:
        state = snapshot(sandbox)
        moving = [a for a in state["ec2"]["associations"].values()
                  if a["state"] in ("associating", "disassociating")]
        if not moving:
            return state
        if time.monotonic() > deadline:
            raise AssertionError("associations still changing after {0} s: {1}".format(timeout, moving))
        time.sleep(0.05)


def run_with_vars(sandbox, playbook, tmp_path, name, variables, *args, **kwargs):
    """ansible-playbook with ``-e @vars.json``; returns (run, result dict or None).

    ``variables["result_file"]`` is set to a file in tmp_path the playbook may write its
    results to (JSON)."""
    result_file = tmp_path / (name + "-result.json")
    if result_file.exists():
        result_file.unlink()
    variables = dict(variables, result_file=str(result_file))
    vars_file = tmp_path / (name + "-vars.json")
    vars_file.write_text(json.dumps(variables))
    run = run_playbook(sandbox, playbook, "-e", "@" + str(vars_file), *args, name=name, **kwargs)
    result = json.loads(result_file.read_text()) if result_file.exists() else None
    return run, result


def playbook_process(sandbox, playbook, log_name, *args):
    """ansible-playbook started in the background, as runner.run_playbook runs it (``kill_tree``
    stops it and everything it started). Output to
    tests/output/integration/<log_name>.log. Returns the Popen."""
    import subprocess
    import sys

    env = dict(os.environ)
    env.update(sandbox.env())
    env.update(KEYLESS_SANDBOX_URL=sandbox.url, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=os.path.join(ROOT, ".build", "ansible-tmp"),
               ANSIBLE_HOME=os.path.join(ROOT, ".build", "ansible-home"), PYTHONPATH=os.path.join(ROOT, "tests"))
    command = [os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local",
               "-e", "ansible_python_interpreter=" + sys.executable, playbook] + list(args)
    os.makedirs(OUTPUT, exist_ok=True)
    log = open(os.path.join(OUTPUT, log_name + ".log"), "w")  # pylint: disable=consider-using-with
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    process.log_file = log
    return process


def _children(pids):
    """Processes whose parent is one of ``pids`` (from /proc)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/{0}/stat".format(entry)) as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) in pids:
            found.add(int(entry))
    return found


def kill_tree(process):
    """SIGKILL a process started by the test and every process it started, by pid. (ansible-playbook's
    workers call setsid(), so killing its process group would miss them and the module they run.)"""
    import signal

    tree = {process.pid}
    while True:
        more = _children(tree) - tree
        if not more:
            break
        tree |= more
    for pid in sorted(tree):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()
    return len(tree)


def recap(output):
    """(ok, changed, failed) of localhost from a PLAY RECAP, or None."""
    found = RECAP.findall(output)
    if not found:
        return None
    ok, changed, _unreachable, failed = (int(x) for x in found[-1])
    return ok, changed, failed


def mutating_calls(calls):
    return [c for c in calls if c["service"] in ("iam", "ec2", "sts") and MUTATING.match(c["action"])]


def record_figures(test, **figures):
    """Append a test's figures to tests/output/integration/reliability-figures.jsonl and print them."""
    figures = dict(test=test, time=round(time.time(), 1), **figures)
    os.makedirs(OUTPUT, exist_ok=True)
    with open(FIGURES, "a") as handle:
        handle.write(json.dumps(figures, sort_keys=True) + "\n")
    print("figures:", json.dumps(figures, sort_keys=True))
    return figures


@contextlib.contextmanager
def fast_retries(base_delay=0.02, max_delay=0.5):
    """Inside the block, every RetryPolicy made with the defaults waits ``base_delay`` (not
    0.5 s) before its first retry and at most ``max_delay``: the same retries, shorter sleeps.
    For in-process runs only (a playbook's modules run in processes of their own)."""
    from ansible_collections.keyless.aws.plugins.module_utils.common import RetryPolicy

    defaults = RetryPolicy.__init__.__defaults__
    names = RetryPolicy.__init__.__code__.co_varnames[1:RetryPolicy.__init__.__code__.co_argcount]
    patched = dict(zip(names[-len(defaults):], defaults), base_delay=base_delay, max_delay=max_delay)
    RetryPolicy.__init__.__defaults__ = tuple(patched[name] for name in names[-len(defaults):])
    try:
        yield
    finally:
        RetryPolicy.__init__.__defaults__ = defaults


def run_module(sandbox, name, args, check_mode=False, extra_env=None):
    """Run keyless.aws.<name>'s main() in this process, as Ansible would run it (the same argument
    spec, the same JSON answer), against the sandbox. Returns the module's result dict.

    Far cheaper than an ansible-playbook task (no fork, no AnsiballZ), for tests that run a
    module many times; the playbook-driven tests cover the path through Ansible itself. Retries
    sleep less (``fast_retries``)."""
    from ansible.module_utils.testing import patch_module_args

    try:
        from ansible.module_utils import _internal  # ansible-core 2.19 and later
    except ImportError:
        _internal = types.SimpleNamespace(is_controller=False)

    module = importlib.import_module("ansible_collections.keyless.aws.plugins.modules." + name)
    env = dict(sandbox.env(), **(extra_env or {}))
    saved = dict((key, os.environ.get(key)) for key in env)
    os.environ.update(env)
    output = io.StringIO()
    # ansible-core 2.19 sends a module's warnings to the controller's display, not into its result,
    # once anything of the controller was imported in the process (another test of this pytest
    # worker may have): run main() as the module side, where the result carries them.
    was_controller, _internal.is_controller = _internal.is_controller, False
    try:
        with patch_module_args(dict(args, _ansible_check_mode=check_mode)), contextlib.redirect_stdout(output), \
                fast_retries():
            try:
                module.main()
            except SystemExit:
                pass
    finally:
        _internal.is_controller = was_controller
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    text = output.getvalue()
    return json.loads(text[text.index("{"):])
