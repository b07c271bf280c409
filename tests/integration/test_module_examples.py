"""Every module's EXAMPLES block runs, as written, against the sandbox.

For each module in plugins/modules/, one test:

1. runs ``tests/integration/examples/<module>.setup.yml``, which creates what the examples
   assume (roles, profiles, instances, launch templates with the names the examples use) and
   hands over the ids the sandbox gave them (see that folder's README.md);
2. takes the module's ``EXAMPLES`` string (read from the file with ``ast``, not imported) and
   runs all its tasks, in order, as the tasks of one play, in one ansible-playbook process.

The only text substituted in an example is a made-up resource id (``i-0123456789abcdef0``,
``lt-...``, ``iip-assoc-...``), replaced by the real id of the resource the setup made for it.
``ID_MAP`` below says which made-up id stands for which resource, per module, explicitly. An
id-like literal an example writes and ``ID_MAP`` does not name fails the test, and so does a
mapping the examples no longer use. Variables an example uses as given (``web_instance_ids``)
are play variables from the setup, and the metadata service of ``imds_credentials`` is an
environment variable of the play (``AWS_EC2_METADATA_SERVICE_ENDPOINT``), not a substitution.
An example that cannot run as written is a bug in the example: fix the module's EXAMPLES.
"""

import ast
import json
import os
import re
import textwrap

import pytest
import yaml

from runner import ROOT, run_playbook

MODULES_DIR = os.path.join(ROOT, "plugins", "modules")
SETUPS_DIR = os.path.join(ROOT, "tests", "integration", "examples")

# Per module: made-up id written in EXAMPLES -> name of the real id in the setup's ``ids``.
ID_MAP = {
    "iam_instance_profile": {},
    "iam_instance_profile_info": {},
    "ec2_profile_association": {
        "i-0123456789abcdef0": "web_1",
        "i-0fedcba9876543210": "web_2",
    },
    "ec2_profile_association_info": {
        "i-0123456789abcdef0": "web_1",
        "i-0fedcba9876543210": "web_2",
    },
    "ec2_metadata_options": {
        "i-0123456789abcdef0": "web_1",
        "i-0fedcba9876543210": "web_2",
        "lt-0123456789abcdef0": "batch_template",
    },
    "imds_credentials": {},
    "credential_sources_info": {},
    "static_keys_info": {},
    "host_access_keys": {},
    "static_keys": {},
    "audit_info": {},
    "guard_event_info": {"i-0123456789abcdef0": "web_1"},
    "event_queue": {},
    "cloudtrail_coverage_info": {},
    "ec2_launch_template_profile": {
        "lt-0123456789abcdef0": "batch_template",
    },
    "ec2_imdsv1_usage_info": {
        "i-0123456789abcdef0": "web_1",
    },
}

# Modules whose examples change the host that runs them (here the test machine, as root) run in
# check mode, which they fully support: they say what they would take off it, and change nothing.
CHECK_MODE_ONLY = {"host_access_keys"}

# Ids of resources AWS creates (and the sandbox creates in their place): instances, launch
# templates, associations, and the EC2 resources an example might name.
ID_LIKE = re.compile(
    r"(?<![\w-])(?:i|lt|iip-assoc|ami|vpc|subnet|sg|eni|vol|snap|r|igw|rtb|eipalloc)-[0-9a-f]{8,17}(?![\w-])")
# Account ids in ARNs: the examples use AWS's documentation account, which is the sandbox's.
ARN_ACCOUNT = re.compile(r"arn:aws[\w-]*:[a-z0-9-]+:[a-z0-9-]*:(\d{12}):")
SANDBOX_ACCOUNT = "123456789012"


def modules():
    return sorted(name[:-3] for name in os.listdir(MODULES_DIR)
                  if name.endswith(".py") and not name.startswith("_"))


def examples_of(module):
    """The module's EXAMPLES string, read without importing the module."""
    with open(os.path.join(MODULES_DIR, module + ".py")) as handle:
        tree = ast.parse(handle.read())
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and getattr(node.targets[0], "id", None) == "EXAMPLES"):
            return ast.literal_eval(node.value)
    raise AssertionError("plugins/modules/{0}.py has no EXAMPLES".format(module))


def substitute(module, text, ids):
    """``text`` with each made-up id of ``ID_MAP[module]`` replaced by the setup's real id."""
    mapping = ID_MAP[module]
    found = set(ID_LIKE.findall(text))
    unmapped = sorted(found - set(mapping))
    assert not unmapped, (
        "the EXAMPLES of {0} name {1}, which no setup creates: add the resource to "
        "tests/integration/examples/{0}.setup.yml and the id to ID_MAP".format(module, ", ".join(unmapped)))
    unused = sorted(set(mapping) - found)
    assert not unused, "ID_MAP[{0!r}] maps {1}, which its EXAMPLES no longer name".format(module, ", ".join(unused))
    for made_up, name in mapping.items():
        assert name in ids, "{0}.setup.yml did not hand over the id {1!r} (for {2})".format(module, name, made_up)
        text = re.sub(r"(?<![\w-]){0}(?![\w-])".format(re.escape(made_up)), ids[name], text)
    return text


def play(module, examples, handed):
    """One play whose tasks are the examples, indented as they are written."""
    lines = [
        "---",
        "- name: keyless.aws.{0} EXAMPLES, as written".format(module),
        "  hosts: localhost",
        "  gather_facts: false",
    ]
    if handed.get("vars"):
        lines.append("  vars: " + json.dumps(handed["vars"], sort_keys=True))
    if handed.get("environment"):
        lines.append("  environment: " + json.dumps(handed["environment"], sort_keys=True))
    lines.append("  tasks:")
    return "\n".join(lines) + "\n" + textwrap.indent(examples.strip("\n") + "\n", "    ")


def test_every_module_has_a_setup():
    assert sorted(ID_MAP) == modules()
    for module in modules():
        assert os.path.isfile(os.path.join(SETUPS_DIR, module + ".setup.yml")), module


def test_substitution_is_explicit():
    """Mapped ids are replaced whole; an id no map names, or a stale mapping, fails."""
    text = "instance_ids: [i-0123456789abcdef0, i-0fedcba9876543210]\nname: i-0123456789abcdef0-old\n"
    ids = {"web_1": "i-aaaaaaaaaaaaaaaaa", "web_2": "i-bbbbbbbbbbbbbbbbb"}
    assert substitute("ec2_profile_association_info", text, ids) == (
        "instance_ids: [i-aaaaaaaaaaaaaaaaa, i-bbbbbbbbbbbbbbbbb]\nname: i-0123456789abcdef0-old\n")
    with pytest.raises(AssertionError, match="lt-0123456789abcdef0, which no setup creates"):
        substitute("ec2_profile_association_info", text + "id: lt-0123456789abcdef0\n", ids)
    with pytest.raises(AssertionError, match="no longer name"):
        substitute("ec2_profile_association_info", "instance_ids: [i-0123456789abcdef0]\n", ids)
    with pytest.raises(AssertionError, match="did not hand over the id 'web_2'"):
        substitute("ec2_profile_association_info", text, {"web_1": "i-aaaaaaaaaaaaaaaaa"})


@pytest.mark.parametrize("module", modules())
def test_examples_are_well_formed(module):
    """Tasks with names, and every ARN in the sandbox's account."""
    examples = examples_of(module)
    tasks = yaml.safe_load(examples)
    assert isinstance(tasks, list) and tasks, module
    for task in tasks:
        assert task.get("name"), "{0}: an example task without a name: {1}".format(module, task)
        assert any(key.startswith("keyless.aws.") or key.startswith("ansible.builtin.") for key in task), task
    assert any("keyless.aws.{0}".format(module) in task for task in tasks), module
    assert set(ARN_ACCOUNT.findall(examples)) <= {SANDBOX_ACCOUNT}, module


@pytest.mark.parametrize("module", modules())
def test_module_examples_run(module, sandbox, tmp_path):
    assert sandbox.client("sts").get_caller_identity()["Account"] == SANDBOX_ACCOUNT

    out = tmp_path / "setup.json"
    setup = run_playbook(sandbox, os.path.join(SETUPS_DIR, module + ".setup.yml"),
                         "-e", "examples_setup_out={0}".format(out), name="examples-{0}-setup".format(module))
    assert setup.returncode == 0, "{0}.setup.yml failed:\n{1}".format(module, setup.output[-4000:])
    handed = json.loads(out.read_text()) if out.exists() else {}

    examples = examples_of(module)
    playbook = tmp_path / "examples.yml"
    playbook.write_text(play(module, substitute(module, examples, handed.get("ids", {})), handed))
    run = run_playbook(sandbox, str(playbook), *(["--check"] if module in CHECK_MODE_ONLY else []),
                       name="examples-{0}".format(module))
    assert run.returncode == 0, "the EXAMPLES of {0} failed as written:\n{1}\n---\n{2}".format(
        module, playbook.read_text(), run.output[-6000:])

    # Every example task ran (none skipped, none failed and ignored), in order.
    names = [task["name"] for task in yaml.safe_load(examples)]
    ran = re.findall(r"^TASK \[(.*)\] \**$", run.output, re.M)
    assert ran == names, (ran, names)
    recap = re.search(r"^localhost\s+:\s+(.*)$", run.output, re.M).group(1)
    counts = dict((key, int(value)) for key, value in re.findall(r"(\w+)=(\d+)", recap))
    assert counts["failed"] == counts["skipped"] == counts["ignored"] == counts["unreachable"] == 0, recap
