# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""IMDS options on launch templates: a new version from the base version that changes only
``MetadataOptions``, made the default; user data findings in the versions read.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import uuid

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import aws_failure
from ansible_collections.keyless.aws.plugins.module_utils.common import error_code
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import _data_without_state
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import _options_of
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import changes_needed
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import snake_options
from ansible_collections.keyless.aws.plugins.module_utils.user_data import _KIND_TEXT
from ansible_collections.keyless.aws.plugins.module_utils.user_data import scan_user_data


_TEMPLATE_NOT_FOUND = (
    "InvalidLaunchTemplateName.NotFoundException",
    "InvalidLaunchTemplateId.NotFound",
    "InvalidLaunchTemplateId.Malformed",
    "InvalidLaunchTemplateName.MalformedException",
)


_VERSION_NOT_FOUND = ("InvalidLaunchTemplateId.VersionNotFound", "InvalidLaunchTemplateVersion.NotFound")


def _template_label(spec):
    return "launch template {0!r}".format(spec["id"] or spec["name"])


def _template_ref(spec):
    return {"LaunchTemplateId": spec["id"]} if spec["id"] else {"LaunchTemplateName": spec["name"]}


def read_template(ec2, spec):
    """The template's base, default and latest versions in one DescribeLaunchTemplateVersions call."""
    wanted = [spec["version"]] + [v for v in ("$Default", "$Latest") if v != spec["version"]]
    try:
        versions = ec2.describe_launch_template_versions(Versions=wanted, **_template_ref(spec))[
            "LaunchTemplateVersions"]
    except Exception as exc:  # pylint: disable=broad-except
        code = error_code(exc)
        if code in _TEMPLATE_NOT_FOUND:
            raise KeylessError(
                "launch_templates: there is no {0} in this region; check the name or id (and the region). Nothing "
                "was changed.".format(_template_label(spec)), param="launch_templates", code=code)
        if code in _VERSION_NOT_FOUND:
            raise KeylessError(
                "launch_templates: {0} has no version {1}{2}. Use $Default, $Latest or an existing version "
                "number. Nothing was changed.".format(_template_label(spec), spec["version"],
                                                      _existing_versions(ec2, spec)),
                param="launch_templates", code=code)
        raise aws_failure(exc, "reading {0}".format(_template_label(spec)))
    if not versions:
        raise KeylessError("launch_templates: there is no {0} in this region. Nothing was changed.".format(
            _template_label(spec)), param="launch_templates")
    by_number = dict((v["VersionNumber"], v) for v in versions)
    latest = by_number[max(by_number)]
    defaults = [v for v in versions if v.get("DefaultVersion")]
    default = defaults[0] if defaults else latest
    if spec["version"] == "$Latest":
        base = latest
    elif spec["version"] == "$Default":
        base = default
    else:
        base = by_number.get(int(spec["version"]))
        if base is None:
            raise KeylessError("launch_templates: {0} has no version {1}. Nothing was changed.".format(
                _template_label(spec), spec["version"]), param="launch_templates")
    return {
        "id": base["LaunchTemplateId"],
        "name": base["LaunchTemplateName"],
        "base": base,
        "default": default,
        "latest": latest,
    }


def _existing_versions(ec2, spec):
    """' (versions 1 to N exist)' for an error message, or '' when that cannot be read."""
    try:
        versions = ec2.describe_launch_template_versions(Versions=["$Latest"], **_template_ref(spec))[
            "LaunchTemplateVersions"]
        return " (its versions go from 1 to {0})".format(versions[0]["VersionNumber"])
    except Exception:  # pylint: disable=broad-except
        return ""


def plan_template(ec2, spec, desired):
    """What a template needs: the new MetadataOptions (base's, with the desired options) and whether the
    latest version already is exactly that (then it is reused, not created again)."""
    template = read_template(ec2, spec)
    base = template["base"]
    current = _options_of(base.get("LaunchTemplateData", {}).get("MetadataOptions"))
    changes = changes_needed(current, desired)
    merged = dict(current)
    merged.update(changes)
    plan = dict(template, spec=spec, current=current, changes=changes, metadata_options=merged, reuse=None)
    if changes:
        expected = _data_without_state(base.get("LaunchTemplateData"))
        expected["MetadataOptions"] = merged
        latest = template["latest"]
        if latest["VersionNumber"] != base["VersionNumber"] and \
                _data_without_state(latest.get("LaunchTemplateData")) == expected:
            plan["reuse"] = latest
    return plan


def template_findings(plan):
    """User data findings in the versions read (base, default, latest): [{version, findings}]."""
    found = []
    seen = set()
    for version in (plan["base"], plan["default"], plan["latest"]):
        number = version["VersionNumber"]
        if number in seen:
            continue
        seen.add(number)
        findings = scan_user_data(version.get("LaunchTemplateData", {}).get("UserData"))
        if findings:
            found.append({
                "launch_template_id": plan["id"],
                "launch_template_name": plan["name"],
                "version": number,
                "findings": findings,
            })
    return found


def ensure_template(ec2, plan, set_default_version, check_mode, version_description=None):
    """Create the hardened version (from the base, only MetadataOptions changed) and make it the default."""
    base_number = plan["base"]["VersionNumber"]
    default_number = plan["default"]["VersionNumber"]
    result = {
        "launch_template_id": plan["id"],
        "launch_template_name": plan["name"],
        "base_version": base_number,
        "new_version": None,
        "matching_version": None,
        "default_version": default_number,
        "changed": False,
        "actions": [],
        "before": snake_options(plan["current"]),
        "after": snake_options(plan["metadata_options"]),
    }
    if not plan["changes"]:
        target = base_number
    elif plan["reuse"] is not None:
        target = plan["reuse"]["VersionNumber"]
    elif check_mode:
        target = plan["latest"]["VersionNumber"] + 1
        result.update(new_version=target, changed=True)
        result["actions"].append("version_created")
    else:
        description = version_description or plan.get("description") or \
            "keyless.aws: version {0} with instance metadata options {1}".format(
                base_number, ", ".join("{0}={1}".format(k, v) for k, v in sorted(plan["changes"].items())))
        try:
            created = ec2.create_launch_template_version(
                # One token for every retry of this call: a retried request never makes a second version.
                ClientToken=str(uuid.uuid4()),
                LaunchTemplateId=plan["id"],
                SourceVersion=str(base_number),
                VersionDescription=description[:255],
                # What the new version changes (launch_templates.py: the profile too); the rest is the base's.
                LaunchTemplateData=plan.get("launch_template_data") or {"MetadataOptions": plan["metadata_options"]},
            )["LaunchTemplateVersion"]
        except Exception as exc:  # pylint: disable=broad-except
            raise aws_failure(exc, "creating a new version of {0}".format(_template_label(plan["spec"])))
        target = created["VersionNumber"]
        result.update(new_version=target, changed=True)
        result["actions"].append("version_created")
    result["matching_version"] = target
    if set_default_version and target != default_number:
        result.update(default_version=target, changed=True)
        result["actions"].append("default_version_set")
        if not check_mode:
            try:
                ec2.modify_launch_template(LaunchTemplateId=plan["id"], DefaultVersion=str(target))
            except Exception as exc:  # pylint: disable=broad-except
                raise aws_failure(exc, "making version {0} the default of {1}".format(
                    target, _template_label(plan["spec"])))
    return result["changed"], result


def _user_data_findings(template_plans, warnings):
    """What looks like a key in the templates' user data; a warning per template version."""
    findings = []
    for plan in template_plans:
        for finding in template_findings(plan):
            findings.append(finding)
            lines = sorted(set(f["line"] for f in finding["findings"]))
            warnings.append(
                "launch template {0!r} version {1}: its user data holds what looks like {2} ({3} {4}). Keys baked "
                "into user data are readable by anyone who can describe the template or reach the instance's "
                "metadata; remove them, rotate them, and give the instances an instance profile instead.".format(
                    finding["launch_template_name"], finding["version"],
                    " and ".join(_KIND_TEXT[kind] for kind in _KIND_TEXT
                                 if kind in set(f["kind"] for f in finding["findings"])),
                    "line" if len(lines) == 1 else "lines", ", ".join(str(line) for line in lines)))
    return findings
