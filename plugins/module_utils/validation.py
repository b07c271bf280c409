# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Input that IAM or EC2 would reject, refused before any AWS call, naming the parameter.

Each ``check_*`` raises KeylessError(param=...) with the rule and an example of a good value.
The rules are IAM's (https://docs.aws.amazon.com/IAM/latest/APIReference/) and EC2's.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import PARTITIONS
from ansible_collections.keyless.aws.plugins.module_utils.common import looks_like_arn
from ansible_collections.keyless.aws.plugins.module_utils.common import parse_arn
from ansible_collections.keyless.aws.plugins.module_utils.common import partition_for_region

_IAM_NAME = re.compile(r"^[\w+=,.@-]+$", re.ASCII)
# "/" alone, or "/" + printable ASCII (0x21-0x7E) + "/"
_IAM_PATH = re.compile(r"^/([\x21-\x7e]*/)?$")
_TAG_TEXT = re.compile(r"^[\w\s.:/=+\-@]*$", re.UNICODE)
_INSTANCE_ID = re.compile(r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
_TEMPLATE_ID = re.compile(r"^lt-[0-9a-f]{17}$")
_TEMPLATE_NAME = re.compile(r"^[a-zA-Z0-9().\-/_]{3,128}$")
_TEMPLATE_VERSION = re.compile(r"^(\$Latest|\$Default|[1-9][0-9]*)$")

NAME_LIMITS = {"instance profile": 128, "role": 64, "user": 64}


def check_iam_name(value, param, kind):
    """An IAM name: 1 to N characters of letters, digits and + = , . @ _ -."""
    limit = NAME_LIMITS[kind]
    if not isinstance(value, str) or not value:
        raise KeylessError("{0} must be a non-empty {1} name.".format(param, kind), param=param)
    if len(value) > limit:
        raise KeylessError(
            "{0}: the {1} name {2!r} is {3} characters long; IAM allows at most {4}.".format(
                param, kind, value[:40] + "...", len(value), limit),
            param=param,
        )
    if not _IAM_NAME.match(value):
        bad = sorted(set(ch for ch in value if not _IAM_NAME.match(ch)))
        raise KeylessError(
            "{0}: the {1} name {2!r} has characters IAM does not allow ({3}); use letters, digits "
            "and + = , . @ _ - only.".format(param, kind, value, " ".join(repr(ch) for ch in bad)),
            param=param,
        )
    return value


def check_iam_path(value, param):
    """An IAM path: '/' or '/segments/' of printable ASCII, at most 512 characters."""
    if value is None:
        return value
    if len(value) > 512:
        raise KeylessError("{0}: an IAM path is at most 512 characters long.".format(param), param=param)
    if not _IAM_PATH.match(value) or "//" in value:
        raise KeylessError(
            "{0}: {1!r} is not an IAM path; a path starts and ends with '/' and holds printable "
            "ASCII with no spaces, for example '/' or '/app/web/'.".format(param, value),
            param=param,
        )
    return value


def check_arn(value, param, resource_type, partition=None):
    """An IAM ARN of the given resource type (``role``, ``instance-profile``); returns its parts."""
    parts = parse_arn(value)
    if parts is None or parts["service"] != "iam" or parts["partition"] not in PARTITIONS:
        raise KeylessError(
            "{0}: {1!r} is not a valid IAM ARN; expected arn:aws:iam::123456789012:{2}/NAME.".format(
                param, value, resource_type),
            param=param,
        )
    if parts["resource_type"] != resource_type:
        raise KeylessError(
            "{0}: {1!r} is the ARN of an IAM {2}, not of an IAM {3}.".format(
                param, value, parts["resource_type"].replace("-", " "), resource_type.replace("-", " ")),
            param=param,
        )
    if partition and parts["partition"] != partition:
        raise KeylessError(
            "{0}: {1!r} belongs to the {2} partition, but the region is in {3}.".format(
                param, value, parts["partition"], partition),
            param=param,
        )
    kind = "role" if resource_type == "role" else "instance profile"
    check_iam_name(parts["name"], param, kind)
    return parts


def name_from_name_or_arn(value, param, resource_type, partition=None):
    """A name given as such or as an ARN (validated either way): returns the name."""
    if looks_like_arn(value):
        return check_arn(value, param, resource_type, partition)["name"]
    kind = "role" if resource_type == "role" else "instance profile"
    if isinstance(value, str) and "/" in value:
        # amazon.aws's examples spell a role as "/path/Name": the name is the last segment.
        value = value.rstrip("/").rsplit("/", 1)[-1]
    return check_iam_name(value, param, kind)


def name_and_arn(value, param, resource_type, region=None):
    """(name, ARN or None) of a parameter given as a name or an ARN, checked as IAM checks it (in
    the partition of ``region`` when given); (None, None) when unset. An empty string fails."""
    if value is None:
        return None, None
    if not value.strip():
        raise KeylessError("{0}: give a name or an ARN, not an empty string.".format(param), param=param)
    partition = partition_for_region(region) if region else None
    return name_from_name_or_arn(value, param, resource_type, partition), (value if looks_like_arn(value) else None)


def check_tags(tags, param="tags"):
    """IAM tag rules: at most 50, key 1-128 and value 0-256 characters, no 'aws:' keys."""
    if tags is None:
        return tags
    if len(tags) > 50:
        raise KeylessError("{0}: {1} tags given; IAM allows at most 50 per resource.".format(param, len(tags)),
                           param=param)
    for key, value in tags.items():
        key = str(key)
        value = "" if value is None else str(value)
        if not key or len(key) > 128:
            raise KeylessError("{0}: tag key {1!r} must be 1 to 128 characters long.".format(param, key[:40]),
                               param=param)
        if key.lower().startswith("aws:"):
            raise KeylessError("{0}: tag key {1!r} uses the reserved prefix 'aws:'.".format(param, key), param=param)
        if len(value) > 256:
            raise KeylessError("{0}: the value of tag {1!r} is longer than 256 characters.".format(param, key),
                               param=param)
        for text, what in ((key, "key"), (value, "value")):
            if not _TAG_TEXT.match(text):
                raise KeylessError(
                    "{0}: tag {1} {2!r} has characters IAM does not allow; use letters, digits, "
                    "spaces and _ . : / = + - @ only.".format(param, what, text),
                    param=param,
                )
    return dict((str(k), "" if v is None else str(v)) for k, v in tags.items())


def check_instance_ids(ids, param="instance_ids"):
    """EC2 instance ids: i- and 8 or 17 hexadecimal digits, no duplicates kept."""
    seen = []
    for instance_id in ids or []:
        if not isinstance(instance_id, str) or not _INSTANCE_ID.match(instance_id):
            raise KeylessError(
                "{0}: {1!r} is not an EC2 instance id (i- followed by 8 or 17 hexadecimal digits).".format(
                    param, instance_id),
                param=param,
            )
        if instance_id not in seen:
            seen.append(instance_id)
    return seen


def check_launch_template_version(version, name, param=None):
    """A launch template version: $Default, $Latest or a number from 1 (``name`` as the message
    says it, such as launch_templates[0]; ``param`` the parameter, ``name`` when not given)."""
    if not _TEMPLATE_VERSION.match(str(version)):
        raise KeylessError("{0}: version {1!r} is not $Default, $Latest or a version number from 1.".format(
            name, version), param=param or name)
    return str(version)


def check_launch_templates(entries, param="launch_templates"):
    """Each entry: exactly one of name or id, and a version ($Default, $Latest or a number >= 1)."""
    checked = []
    seen = set()
    for index, entry in enumerate(entries or []):
        where = "{0}[{1}]".format(param, index)
        if not isinstance(entry, dict):
            raise KeylessError("{0}: give a template as a dict with name or id (and optionally version).".format(where),
                               param=param)
        name, template_id = entry.get("name"), entry.get("id")
        if bool(name) == bool(template_id):
            raise KeylessError("{0}: give exactly one of name or id for a launch template.".format(where), param=param)
        if template_id and not _TEMPLATE_ID.match(template_id):
            raise KeylessError("{0}: {1!r} is not a launch template id (lt- followed by 17 hexadecimal "
                               "digits).".format(where, template_id), param=param)
        if name and not _TEMPLATE_NAME.match(name):
            raise KeylessError("{0}: {1!r} is not a launch template name (3 to 128 letters, digits and "
                               "( ) . - / _).".format(where, name), param=param)
        version = entry.get("version")
        version = "$Default" if version in (None, "") else str(version)
        check_launch_template_version(version, where, param)
        key = template_id or name
        if key in seen:
            raise KeylessError("{0}: launch template {1!r} is named twice.".format(where, key), param=param)
        seen.add(key)
        checked.append({"name": name, "id": template_id, "version": version})
    return checked


def check_request_rate(rate, param="max_request_rate"):
    """A rate of calls per second: None (the documented rates), else a number above 0."""
    if rate is None:
        return None
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
        raise KeylessError("{0}: {1!r} is not a rate; give the most mutating EC2 calls per second this task may "
                           "make, a number above 0 (such as 2 or 0.5), or leave it out for the rates EC2 "
                           "documents.".format(param, rate), param=param)
    return float(rate)
