# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""keyless.aws.ec2_metadata_options as one step of a longer run: the job of metadata_options.py,
plus what a playbook or role would otherwise rebuild in Jinja around it.

* ``canary_percent``: the stages of a plan (check mode) - which instances go first, which follow,
  which are skipped for their IMDSv1 use (stages.py, the collection's one canary rule);
* ``hardened_launch_templates``: the launch templates an earlier task of the same run hardens (the
  instance_profile role's launch template phase). In check mode that task only predicted, so the
  enforcement report would read them as they are now and refuse; here they are counted as that
  task leaves them - the version named, with this task's options - and a template that does not
  exist yet is left out (the earlier task creates it with the options). They are this task's reads,
  not its changes: they are not in ``launch_templates``, the diff or ``changed``.

Every input is checked before the first AWS call; functions take boto3 clients (``RetryingClient``
in the module) and return plain data.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import paginate
from ansible_collections.keyless.aws.plugins.module_utils.metadata_options import manage_metadata_options
from ansible_collections.keyless.aws.plugins.module_utils.metadata_options import validated
from ansible_collections.keyless.aws.plugins.module_utils.stages import check_percent
from ansible_collections.keyless.aws.plugins.module_utils.stages import instance_stages
from ansible_collections.keyless.aws.plugins.module_utils.validation import check_launch_templates

STAGES_OPTION = "canary_percent"
HARDENED_OPTION = "hardened_launch_templates"


def checked_rollout_input(params):
    """(canary percent or None, hardened template specs): this file's options, checked."""
    percent = params.get(STAGES_OPTION)
    if percent is not None:
        check_percent(percent, STAGES_OPTION)
        if not (params.get("instance_ids") or params.get("filters")):
            raise KeylessError(
                "{0}: the stages are stages of instances; name them (instance_ids or filters), or leave {0} "
                "out. Nothing was changed.".format(STAGES_OPTION), param=STAGES_OPTION)
    hardened = check_launch_templates(params.get(HARDENED_OPTION), HARDENED_OPTION)
    return percent, hardened


def counts_hardened_templates(params, check_mode):
    """Whether the templates hardened by an earlier task are read as it leaves them: only a
    check-mode run reads the enforcement report before they are (a real run finds them hardened)."""
    return bool(check_mode and params.get("account_defaults") and params.get("http_tokens_enforced") == "enabled")


def hardened_first(ec2, hardened, given):
    """The templates of ``hardened`` (checked specs) that exist, but for those this task hardens
    itself (``given``, its own ``launch_templates``): [{launch_template_id, launch_template_name,
    version}], in the order named, each once. One paginated DescribeLaunchTemplates."""
    if not hardened:
        return []
    templates = paginate(ec2.describe_launch_templates, "LaunchTemplates", token_in="NextToken",
                         token_out="NextToken")
    by_id = dict((t["LaunchTemplateId"], t) for t in templates)
    by_name = dict((t["LaunchTemplateName"], t) for t in templates)

    def find(spec):
        return by_id.get(spec["id"]) if spec.get("id") else by_name.get(spec["name"])

    own = set(t["LaunchTemplateId"] for t in (find(spec) for spec in given) if t)
    counted = []
    for spec in hardened:
        template = find(spec)
        if template is None or template["LaunchTemplateId"] in own:
            continue
        own.add(template["LaunchTemplateId"])
        counted.append({"launch_template_id": template["LaunchTemplateId"],
                        "launch_template_name": template["LaunchTemplateName"], "version": spec["version"]})
    return counted


def leave_out(result, counted):
    """Take the templates read only for the report out of what the task says it changes."""
    ids = set(t["launch_template_id"] for t in counted)
    headers = set("launch template {0} ({1})".format(t["launch_template_name"], t["launch_template_id"])
                  for t in counted)
    result["launch_templates"] = [t for t in result["launch_templates"] if t["launch_template_id"] not in ids]
    diff = result.get("diff")
    if isinstance(diff, list):
        diff = [entry for entry in diff if entry.get("before_header") not in headers]
        result["diff"] = diff or {"before": {}, "after": {}}
    result["changed"] = bool(any(i["changed"] for i in result["instances"])
                             or any(t["changed"] for t in result["launch_templates"])
                             or (result.get("account_defaults") or {}).get("changed"))
    return result


def manage_rollout_step(ec2, params, check_mode, **kwargs):
    """keyless.aws.ec2_metadata_options's result (``manage_metadata_options``, ``kwargs`` passed
    on), with ``stages`` (``canary_percent``) and ``hardened_launch_templates``."""
    percent, hardened = checked_rollout_input(params)
    plan_input, _warnings = validated(params)  # every other input, before the first AWS call
    counted = []
    run_params = params
    if hardened and counts_hardened_templates(params, check_mode):
        counted = hardened_first(ec2, hardened, plan_input["launch_templates"])
        run_params = dict(params, launch_templates=list(params.get("launch_templates") or []) + [
            {"id": t["launch_template_id"], "name": None, "version": t["version"]} for t in counted])
    result = manage_metadata_options(ec2, run_params, check_mode, **kwargs)
    if counted:
        leave_out(result, counted)
    result[HARDENED_OPTION] = counted
    result["stages"] = instance_stages(result["instances"], percent) if percent is not None else None
    return result
