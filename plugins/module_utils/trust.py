# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Trust policies: render one that lets EC2 assume a role, and tell whether a role's policy
does, in which partition, and if not, exactly what is missing."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import json

try:
    from urllib.parse import unquote
except ImportError:  # pragma: no cover - Python 2 is not supported, sanity wants the guard
    from urllib import unquote  # type: ignore

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import PARTITIONS
from ansible_collections.keyless.aws.plugins.module_utils.common import parse_arn


def ec2_principal(partition="aws"):
    """The EC2 service principal of a partition."""
    if partition not in PARTITIONS:
        raise KeylessError("unknown AWS partition {0!r}; expected one of {1}.".format(partition, ", ".join(PARTITIONS)))
    return "ec2.amazonaws.com.cn" if partition == "aws-cn" else "ec2.amazonaws.com"


def load_policy(document):
    """A policy document as a dict, whether given as a dict, JSON text or URL-encoded JSON."""
    if isinstance(document, dict):
        return document
    if not document:
        return {}
    text = document
    if text.lstrip().startswith("%7B") or "%22" in text:
        text = unquote(text)
    try:
        loaded = json.loads(text)
    except ValueError as exc:
        raise KeylessError("the trust policy is not valid JSON: {0}".format(exc))
    if not isinstance(loaded, dict):
        raise KeylessError("the trust policy must be a JSON object with a Statement list.")
    return loaded


def _as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _action_matches(patterns, action="sts:AssumeRole"):
    return any(fnmatch.fnmatchcase(action.lower(), str(p).lower()) for p in patterns)


def _principal_services(principal):
    """(services, wildcard) named by a Principal element."""
    if principal == "*":
        return [], True
    if not isinstance(principal, dict):
        return [], False
    wildcard = any("*" in _as_list(principal.get(key)) for key in ("AWS", "*"))
    return [str(s) for s in _as_list(principal.get("Service"))], wildcard


def analyse_trust(document, partition="aws"):
    """How a trust policy treats EC2 in a partition.

    Returns a dict:
      ``trusts_ec2``: EC2 may assume the role (an Allow for sts:AssumeRole naming the EC2
        principal or a wildcard, and no unconditional Deny for it);
      ``wildcard_principal``: some Allow statement lets any principal assume the role;
      ``conditional``: the Allow that grants EC2 carries a Condition (EC2 must meet it);
      ``problem``: when EC2 is not trusted, one sentence saying exactly what is missing.
    """
    principal = ec2_principal(partition)
    policy = load_policy(document)
    statements = _as_list(policy.get("Statement"))
    allowed = False
    conditional = False
    wildcard_principal = False
    denied = False
    near_misses = []
    for statement in statements:
        if not isinstance(statement, dict):
            continue
        effect = statement.get("Effect")
        actions = _as_list(statement.get("Action"))
        services, wildcard = _principal_services(statement.get("Principal"))
        names_ec2 = principal in services or wildcard
        if effect == "Allow" and wildcard and _action_matches(actions):
            wildcard_principal = True
        if effect == "Allow" and names_ec2 and _action_matches(actions):
            if statement.get("Condition"):
                conditional = True
            else:
                allowed = True
            continue
        if effect == "Deny" and names_ec2 and _action_matches(actions) and not statement.get("Condition"):
            denied = True
        if effect == "Allow" and names_ec2:
            near_misses.append("a statement names {0} but allows {1}, not sts:AssumeRole".format(
                principal, ", ".join(str(a) for a in actions) or "no action"))
        elif effect == "Allow" and _action_matches(actions):
            other = [s for s in services if s.startswith("ec2.")]
            if other:
                near_misses.append("a statement allows sts:AssumeRole for {0}, but in the {1} partition EC2 is "
                                   "{2}".format(", ".join(other), partition, principal))
    trusts = (allowed or conditional) and not denied
    problem = None
    if not trusts:
        if denied:
            problem = "the trust policy denies sts:AssumeRole to {0}".format(principal)
        elif near_misses:
            problem = near_misses[0]
        else:
            problem = ("no statement allows sts:AssumeRole for the service principal {0}; add "
                       '{{"Effect": "Allow", "Principal": {{"Service": "{0}"}}, "Action": "sts:AssumeRole"}}'
                       .format(principal))
    return {
        "trusts_ec2": trusts,
        "wildcard_principal": wildcard_principal,
        "conditional": conditional and not allowed,
        "principal": principal,
        "problem": problem,
    }


def render_trust_policy(partition="aws", conditions=None, extra_statements=None):
    """A trust policy that lets EC2 (of the partition) assume the role.

    ``conditions`` (a Condition block) restricts the EC2 statement, e.g.
    ``{"StringEquals": {"aws:SourceAccount": "123456789012"}}``; ``extra_statements`` are added
    as given. A wildcard principal anywhere is refused.
    """
    statement = {
        "Sid": "AllowEC2AssumeRole",
        "Effect": "Allow",
        "Principal": {"Service": ec2_principal(partition)},
        "Action": "sts:AssumeRole",
    }
    if conditions:
        statement["Condition"] = conditions
    policy = {"Version": "2012-10-17", "Statement": [statement] + list(extra_statements or [])}
    check_rendered_policy(policy, partition)
    return policy


def check_rendered_policy(policy, partition="aws"):
    """Refuse a trust policy that does not let EC2 in, or lets anybody in."""
    analysis = analyse_trust(policy, partition)
    if analysis["wildcard_principal"]:
        raise KeylessError("the trust policy lets any principal ('*') assume the role; name the principals instead.")
    if not analysis["trusts_ec2"]:
        raise KeylessError("the trust policy does not let EC2 assume the role: {0}.".format(analysis["problem"]))
    return analysis


def role_trust(role):
    """analyse_trust() of a role (boto3 shape), in the partition of its ARN."""
    parts = parse_arn(role.get("Arn"))
    return analyse_trust(role.get("AssumeRolePolicyDocument") or {}, parts["partition"] if parts else "aws")


def trust_verdict(role, trust_check, subject, param, prefix=""):
    """The one verdict on "does this role trust EC2?", for every module that checks it.

    ``role``: boto3 shape with its AssumeRolePolicyDocument (None: nothing to check);
    ``trust_check``: ``fail`` raises (naming ``param``), ``warn`` warns, ``skip`` does not look;
    ``subject``: how messages name the role ("role 'web'" or "role 'web' of instance profile
    'web'"); ``prefix``: put before the failure sentence ("instance_profile: "). Returns
    (role_trusts_ec2 or None when not checked, warnings).
    """
    if role is None or trust_check == "skip":
        return None, []
    analysis = role_trust(role)
    if not analysis["trusts_ec2"]:
        message = "{0}{1} does not trust EC2, so instances given this profile get no credentials: {2}.".format(
            prefix, subject, analysis["problem"])
        if trust_check == "fail":
            raise KeylessError(message + " Fix the role's trust policy, or set trust_check to warn or skip.",
                               param=param)
        return False, [message]
    if analysis["wildcard_principal"]:
        return True, ["{0} lets any principal ('*') assume it; name the principals it must trust instead.".format(
            subject)]
    if analysis["conditional"]:
        return True, ["{0} trusts {1} only under a Condition; make sure EC2 meets it.".format(
            subject, analysis["principal"])]
    return True, []
