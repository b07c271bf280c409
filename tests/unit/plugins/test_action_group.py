"""meta/runtime.yml's action group names exactly the modules that document it (the
keyless.aws.attributes.ACTIONGROUP fragment), so module_defaults for group/keyless.aws.aws reach
every AWS module of the collection and nothing else."""

import os

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
MODULES = os.path.join(ROOT, "plugins", "modules")


def test_the_aws_action_group_names_every_module_that_says_it_belongs():
    with open(os.path.join(ROOT, "meta", "runtime.yml")) as handle:
        group = [entry for entry in yaml.safe_load(handle)["action_groups"]["aws"] if isinstance(entry, str)]
    documented = []
    for name in sorted(os.listdir(MODULES)):
        with open(os.path.join(MODULES, name)) as handle:
            if "keyless.aws.attributes.ACTIONGROUP" in handle.read():
                documented.append(name[:-3])
    assert sorted(group) == documented
