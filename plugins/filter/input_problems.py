# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Jinja filter: check variables the way the modules check their parameters (validation.py), so a
role's input rules are the modules' rules, one regex in one place."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.validation import check_iam_name
from ansible_collections.keyless.aws.plugins.module_utils.validation import check_iam_path
from ansible_collections.keyless.aws.plugins.module_utils.validation import check_instance_ids
from ansible_collections.keyless.aws.plugins.module_utils.validation import check_launch_templates

RULES = {
    "role_name": lambda value, name: check_iam_name(value, name, "role"),
    "instance_profile_name": lambda value, name: check_iam_name(value, name, "instance profile"),
    "iam_path": check_iam_path,
    "instance_ids": check_instance_ids,
    "launch_templates": check_launch_templates,
}


def input_problems(checks):
    """[[rule, variable name, value], ...] -> the messages of the checks that fail (empty: all good)."""
    if not isinstance(checks, (list, tuple)):
        raise AnsibleFilterError("input_problems: give a list of [rule, variable, value] items")
    problems = []
    for item in checks:
        if not isinstance(item, (list, tuple)) or len(item) != 3 or item[0] not in RULES:
            raise AnsibleFilterError("input_problems: {0!r} is not [rule, variable, value] with a rule among {1}".format(
                item, ", ".join(sorted(RULES))))
        rule, name, value = item
        try:
            RULES[rule](value, name)
        except KeylessError as error:
            problems.append(error.message)
    return problems


class FilterModule(object):
    def filters(self):
        return {"input_problems": input_problems}
