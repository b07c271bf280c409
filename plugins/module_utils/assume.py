# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A module's ``assume_role`` option: the role of another account (or of this one) that the
module's own process assumes before its first call, so that a target read by one module run
costs one process, not two (``amazon.aws.sts_assume_role`` and then the module).

Input is checked here before any AWS call, against STS AssumeRole's published constraints (the
API reference, https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html, and
botocore's sts/2011-06-15 model):

- RoleArn: 20 to 2048 characters; here also an IAM role ARN (``arn:<partition>:iam::<account>:role/...``),
  which STS would otherwise refuse only after the call.
- RoleSessionName: 2 to 64 characters of ``[\\w+=,.@-]``.
- ExternalId: 2 to 1224 characters of ``[\\w+=,.@:/-]``.
- DurationSeconds: 900 to 43200 (and at most the role's maximum session duration, which only
  STS knows: its refusal is reported as it comes).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import error_code
from ansible_collections.keyless.aws.plugins.module_utils.common import error_message
from ansible_collections.keyless.aws.plugins.module_utils.common import parse_arn

# The option, as a module's argument_spec takes it (and its DOCUMENTATION describes it).
ASSUME_ROLE_SPEC = dict(
    type="dict",
    options=dict(
        role_arn=dict(type="str", required=True),
        external_id=dict(type="str", no_log=True),
        session_name=dict(type="str"),
        duration_seconds=dict(type="int"),
    ),
)

DEFAULT_SESSION_NAME = "keyless-aws"
_SESSION_NAME = re.compile(r"^[\w+=,.@-]{2,64}$", re.ASCII)
_EXTERNAL_ID = re.compile(r"^[\w+=,.@:/-]{2,1224}$", re.ASCII)


def checked(options):
    """The ``assume_role`` option, checked, as AssumeRole's keyword arguments; None when not
    given (or given without a role ARN: the playbook's way to say "this target uses the
    controller's credentials"). Raises KeylessError naming the sub-option at fault."""
    if not options or not options.get("role_arn"):
        return None
    arn = options["role_arn"]
    parts = parse_arn(arn)
    if (parts is None or parts["service"] != "iam" or parts["resource_type"] != "role" or not parts["name"]
            or not parts["account"].isdigit() or not 20 <= len(arn) <= 2048):
        raise KeylessError(
            "assume_role.role_arn: {0!r} is not an IAM role ARN; give arn:<partition>:iam::<account id>:role/<name>, "
            "for example arn:aws:iam::123456789012:role/keyless-audit.".format(arn), param="assume_role.role_arn")
    call = {"RoleArn": arn, "RoleSessionName": options.get("session_name") or DEFAULT_SESSION_NAME}
    if not _SESSION_NAME.match(call["RoleSessionName"]):
        raise KeylessError(
            "assume_role.session_name: {0!r} is not a session name STS takes: 2 to 64 letters, digits and any of "
            "+=,.@_-.".format(call["RoleSessionName"]), param="assume_role.session_name")
    external_id = options.get("external_id")
    if external_id:
        # The value is a secret of the role's owner: the message never repeats it.
        if not _EXTERNAL_ID.match(external_id):
            raise KeylessError(
                "assume_role.external_id is not an external id STS takes: 2 to 1224 letters, digits and any of "
                "+=,.@:/_- (the value is not shown).", param="assume_role.external_id")
        call["ExternalId"] = external_id
    duration = options.get("duration_seconds")
    if duration is not None:
        if isinstance(duration, bool) or not isinstance(duration, int) or not 900 <= duration <= 43200:
            raise KeylessError(
                "assume_role.duration_seconds: {0!r} is out of range; STS AssumeRole takes 900 to 43200 seconds (and "
                "at most the role's maximum session duration, 3600 unless the role raises it).".format(duration),
                param="assume_role.duration_seconds")
        call["DurationSeconds"] = duration
    return call


def assume(sts, call, target=None):
    """AssumeRole with ``call`` (from ``checked``) through ``sts``; returns (credentials for a
    boto3 client, the account of the session). A refusal is a KeylessError saying what to check
    (naming ``target``, the run's name for this account and region, when given), the external id
    never in it."""
    what = "{0} for {1}".format(call["RoleArn"], target) if target else call["RoleArn"]
    try:
        answer = sts.assume_role(**call)
    except Exception as exc:  # pylint: disable=broad-except
        code = error_code(exc)
        if code is None:
            raise KeylessError("Could not assume {0}: {1}".format(what, exc), exception=exc)
        raise KeylessError(
            "Could not assume {0}: AWS said {1}: {2}. Check that the role exists in that account, that its trust "
            "policy lets the controller's identity in{3}, and that the account is active.".format(
                what, code, error_message(exc), " with this external id" if "ExternalId" in call else ""),
            code=code, exception=exc)
    credentials = answer["Credentials"]
    session_arn = (answer.get("AssumedRoleUser") or {}).get("Arn") or ""
    account = (parse_arn(session_arn) or {}).get("account") or (parse_arn(call["RoleArn"]) or {}).get("account")
    return ({"aws_access_key_id": credentials["AccessKeyId"],
             "aws_secret_access_key": credentials["SecretAccessKey"],
             "aws_session_token": credentials["SessionToken"]}, account)
