"""The instance_profile role's contract: defaults and argument specs mirror each other one to
one, the README documents every variable, and the README's example playbooks run as written
against the sandbox (in order, on one sandbox, like the pages of docs/)."""

import os
import re

import yaml

from runner import ROOT, run_playbook
from sandbox.seed import run_instances

ROLE = os.path.join(ROOT, "roles", "instance_profile")
BLOCK = re.compile(r"^```yaml playbook[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)


def _load(*parts):
    with open(os.path.join(ROLE, *parts)) as handle:
        return yaml.safe_load(handle)


def _spec():
    return _load("meta", "argument_specs.yml")["argument_specs"]["main"]["options"]


def test_defaults_and_argument_specs_mirror_each_other():
    defaults = _load("defaults", "main.yml")
    spec = _spec()
    required = sorted(name for name, option in spec.items() if option.get("required"))
    assert required == ["instance_profile_role_name"]
    assert sorted(defaults) == sorted(set(spec) - set(required))
    for name, option in spec.items():
        assert name.startswith("instance_profile_")
        assert option.get("type") and option.get("description"), name
        if "default" in option:
            assert defaults[name] == option["default"], name
        if "choices" in option:
            assert defaults[name] in option["choices"], name


def test_readme_documents_every_variable():
    with open(os.path.join(ROLE, "README.md")) as handle:
        readme = handle.read()
    for name in _spec():
        assert "| `{0}` |".format(name) in readme, name


def test_readme_examples_run(sandbox, tmp_path):
    ec2 = sandbox.client("ec2")
    # The fleet the second example finds: two running web instances, one carrying another profile.
    iam = sandbox.client("iam")
    iam.create_instance_profile(InstanceProfileName="web-old")
    # A profile EC2 knows, as the fleet's old one would be (the example is not about propagation).
    sandbox.rules.settle("web-old")
    for profile in (None, "web-old"):
        kwargs = dict(ImageId="ami-12345678", InstanceType="t3.micro",
                      TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "team", "Value": "web"}]}])
        if profile:
            kwargs["IamInstanceProfile"] = {"Name": profile}
        run_instances(sandbox, **kwargs)  # waits until the instance runs, as the comment above says
    with open(os.path.join(ROLE, "README.md")) as handle:
        blocks = BLOCK.findall(handle.read())
    assert len(blocks) == 3
    for number, block in enumerate(blocks, 1):
        playbook = tmp_path / "readme-{0}.yml".format(number)
        playbook.write_text(block)
        run = run_playbook(sandbox, str(playbook), name="role-readme-{0}".format(number))
        assert run.returncode == 0, "README example {0} failed:\n{1}\n---\n{2}".format(
            number, block, run.output[-4000:])
    # After the teardown: no role, no profile but the old one, nothing attached to the fleet.
    assert [p["InstanceProfileName"] for p in iam.list_instance_profiles()["InstanceProfiles"]] == ["web-old"]
    assert [r["RoleName"] for r in iam.list_roles()["Roles"]] == []
    assert [a for a in ec2.describe_iam_instance_profile_associations()["IamInstanceProfileAssociations"]
            if a["State"] == "associated"] == []
