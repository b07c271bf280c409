"""The role's list of launch template data keys (vars/main.yml) is exactly what
tasks/launch_templates.yml passes on to amazon.aws.ec2_launch_template: validate.yml refuses any
other key, so a key added to one and not the other fails here, not in a user's run."""

import os
import re

import yaml

ROLE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
                    "roles", "instance_profile")


def test_the_data_keys_are_the_options_launch_templates_yml_passes():
    with open(os.path.join(ROLE, "vars", "main.yml")) as handle:
        listed = yaml.safe_load(handle)["instance_profile__template_data_keys"]
    with open(os.path.join(ROLE, "tasks", "launch_templates.yml")) as handle:
        passed = set(re.findall(r"\bitem\.data\.([a-z_]+)\b", handle.read()))
    assert sorted(listed) == sorted(set(listed)), "a key is listed twice"
    assert set(listed) == passed
