"""Bad input, a corpus of it (bad_inputs.yml): every module and the role's variables.

Each case must fail, with a message that names the parameter at fault, before any change: the
request log of the case holds reads only, and the sandbox's IAM and EC2 state, compared as a
snapshot, is identical before and after the whole corpus.

The module cases run each module's main() in this process (the module's own argument spec and
validation, without the cost of an ansible-playbook task each); the role cases run in one
ansible-playbook, one play per case, each rescued and its message kept. test_the_path_through_
ansible compares a few module cases run as ansible-playbook tasks with the in-process answers.
"""

import json
import os
import re

import pytest
import yaml

from reliability_support import ROOT
from reliability_support import launch
from reliability_support import make_profile
from reliability_support import make_role
from reliability_support import mutating_calls
from reliability_support import record_figures
from reliability_support import run_module
from reliability_support import run_playbook
from sandbox.seed import wait_until
from sandbox_snapshot import diff
from sandbox_snapshot import snapshot

CORPUS_FILE = os.path.join(ROOT, "tests", "integration", "bad_inputs.yml")
LAMBDA_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def corpus():
    with open(CORPUS_FILE) as handle:
        return yaml.safe_load(handle)


def build_world(sandbox):
    """The world the corpus names, as it is minutes after it was made: profiles EC2 knows (the
    corpus is about bad input, not propagation), instances running, the terminated one
    terminated (not ``shutting-down``, which would change between the two snapshots)."""
    iam, ec2 = sandbox.client("iam"), sandbox.client("ec2")
    make_role(iam, "app")
    make_profile(iam, "app-profile", "app")
    make_role(iam, "lambda", LAMBDA_TRUST)
    make_profile(iam, "lambda", "lambda")
    make_profile(iam, "empty-profile")
    iam.create_instance_profile(InstanceProfileName="web", Path="/web/")
    sandbox.rules.settle()
    ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={"ImageId": "ami-12345678"})
    instances = {"attached": launch(ec2, 1, profile="app-profile")[0], "bare": launch(ec2, 1)[0],
                 "terminated": launch(ec2, 1)[0]}
    ec2.terminate_instances(InstanceIds=[instances["terminated"]])
    wait_until(sandbox, [instances["terminated"]], ("terminated",))
    return instances


def names(message, param):
    """The message names the parameter as a word of its own (not inside another name)."""
    return re.search(r"(?<![\w.-]){0}(?![\w-])".format(re.escape(param)), message or "") is not None


def resolve(value, instances):
    """@name placeholders replaced by the world's instance ids."""
    if isinstance(value, str) and value.startswith("@"):
        return instances[value[1:]]
    if isinstance(value, list):
        return [resolve(v, instances) for v in value]
    if isinstance(value, dict):
        return dict((k, resolve(v, instances)) for k, v in value.items())
    return value


def test_the_corpus_is_big_and_covers_every_module_and_the_role():
    cases = corpus()
    modules = set(case["module"] for case in cases["modules"])
    shipped = set(name[:-3] for name in os.listdir(os.path.join(ROOT, "plugins", "modules"))
                  if name.endswith(".py") and not name.startswith("_"))
    assert modules == shipped
    assert len(cases["modules"]) + len(cases["role"]) >= 30
    ids = [case["id"] for case in cases["modules"] + cases["role"]]
    assert len(ids) == len(set(ids))
    for case in cases["modules"] + cases["role"]:
        assert case["param"] and case["why"], case["id"]


def role_playbook(cases, base, instances, results_dir):
    """One play per case: the role with the case's vars, rescued; the outcome saved as JSON."""
    plays = []
    for case in cases:
        variables = dict(resolve(base, instances))
        for key, value in resolve(case["vars"], instances).items():
            if value is None:
                variables.pop(key, None)  # null: the variable is not given at all
            else:
                variables[key] = value
        plays.append({
            "name": "Bad input " + case["id"],
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [
                {"name": "The role with one thing wrong", "block": [
                    {"name": "Run the role", "ansible.builtin.include_role": {"name": "keyless.aws.instance_profile"},
                     "vars": variables},
                    {"name": "Not reached", "ansible.builtin.set_fact": {"outcome": {"failed": False}}},
                ], "rescue": [
                    {"name": "It failed", "ansible.builtin.set_fact": {
                        "outcome": {"failed": True, "msg": "{{ ansible_failed_result.msg | default('') }}"}}},
                ]},
                {"name": "Keep the outcome", "ansible.builtin.copy": {
                    "content": "{{ outcome | to_json }}", "dest": os.path.join(results_dir, case["id"] + ".json"),
                    "mode": "0600"}},
            ],
        })
    return plays


@pytest.mark.slow
def test_every_bad_input_fails_naming_the_parameter_and_changes_nothing(sandbox, tmp_path):
    instances = build_world(sandbox)
    cases = corpus()
    before = snapshot(sandbox)
    problems, messages = [], {}

    for case in cases["modules"]:
        sandbox.app.clear_log()
        result = run_module(sandbox, case["module"], resolve(case["args"], instances))
        changes = [c["action"] for c in mutating_calls(sandbox.calls())]
        message = result.get("msg", "")
        messages[case["id"]] = message
        if not result.get("failed"):
            problems.append("{0}: did not fail ({1})".format(case["id"], json.dumps(result)[:300]))
        elif not names(message, case["param"]):
            problems.append("{0}: the message does not name {1}: {2}".format(case["id"], case["param"], message))
        if result.get("param") not in (None, case["param"]):
            problems.append("{0}: param is {1}, not {2}".format(case["id"], result["param"], case["param"]))
        if changes:
            problems.append("{0}: made changes before failing: {1}".format(case["id"], changes))

    results_dir = tmp_path / "role-outcomes"
    results_dir.mkdir()
    playbook = tmp_path / "bad-input-role.yml"
    playbook.write_text(yaml.safe_dump(role_playbook(cases["role"], cases["role_base"], instances,
                                                     str(results_dir)), sort_keys=False))
    sandbox.app.clear_log()
    run = run_playbook(sandbox, str(playbook), name="bad-input-role")
    assert run.returncode == 0, run.output[-5000:]
    changes = [c["action"] for c in mutating_calls(sandbox.calls())]
    if changes:
        problems.append("the role cases made changes: {0}".format(changes))
    for case in cases["role"]:
        outcome = json.loads((results_dir / (case["id"] + ".json")).read_text())
        messages[case["id"]] = outcome.get("msg", "")
        if not outcome["failed"]:
            problems.append("{0}: the role did not fail".format(case["id"]))
        elif not names(outcome["msg"], case["param"]):
            problems.append("{0}: the message does not name {1}: {2}".format(
                case["id"], case["param"], outcome["msg"]))

    state_diffs = diff(before, snapshot(sandbox))
    with open(os.path.join(os.path.dirname(run.log_path), "bad-input-messages.json"), "w") as handle:
        json.dump(messages, handle, indent=1, sort_keys=True)
    record_figures("bad-input", bad_inputs_tried=len(cases["modules"]) + len(cases["role"]),
                   module_cases=len(cases["modules"]), role_cases=len(cases["role"]), problems=len(problems),
                   state_diffs=len(state_diffs))
    assert problems == [], "\n".join(problems)
    assert state_diffs == []


THROUGH_ANSIBLE = ("profile-tags-not-a-dict", "attach-max-concurrency-zero", "attach-role-name-as-profile",
                   "imds-template-name-and-id")


@pytest.mark.slow
def test_the_path_through_ansible_gives_the_same_messages(sandbox, tmp_path):
    """A few module cases as ansible-playbook tasks: the same failure, the same message."""
    instances = build_world(sandbox)
    cases = dict((case["id"], case) for case in corpus()["modules"] if case["id"] in THROUGH_ANSIBLE)
    tasks = []
    for case_id, case in sorted(cases.items()):
        tasks.append({"name": case_id, "keyless.aws." + case["module"]: resolve(case["args"], instances),
                      "register": case_id.replace("-", "_"), "ignore_errors": True})
    outcomes = ", ".join("'{0}': {1}".format(c, c.replace("-", "_")) for c in sorted(cases))
    tasks.append({"name": "Keep the outcomes", "ansible.builtin.copy": {
        "content": "{{ {" + outcomes + "} | to_json }}", "dest": str(tmp_path / "outcomes.json"), "mode": "0600"}})
    playbook = tmp_path / "bad-input-modules.yml"
    playbook.write_text(yaml.safe_dump([{"name": "Bad input through Ansible", "hosts": "localhost",
                                         "gather_facts": False, "tasks": tasks}], sort_keys=False))
    run = run_playbook(sandbox, str(playbook), name="bad-input-modules")
    assert run.returncode == 0, run.output[-5000:]
    outcomes = json.loads((tmp_path / "outcomes.json").read_text())
    for case_id, case in cases.items():
        in_process = run_module(sandbox, case["module"], resolve(case["args"], instances))
        through_ansible = outcomes[case_id]
        assert through_ansible["failed"] and in_process["failed"], case_id
        assert names(through_ansible["msg"], case["param"]), (case_id, through_ansible["msg"])
        assert through_ansible["msg"] == in_process["msg"], case_id
