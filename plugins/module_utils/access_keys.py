# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The account's static keys, from IAM: who holds each, its status, its last use.

Read once per run, however many instances share a key: ``ListUsers``, then ``ListAccessKeys`` per
user, then ``GetAccessKeyLastUsed`` per key (only for the keys asked about, when fingerprints are
given). Every key id is turned into its description (``credential_chain.describe_key``: kind, last
four characters, account, fingerprint) the moment it is read, so no whole key id reaches a result;
keys found on instances (``credential_sources_info``) are matched by fingerprint, which both
sides compute alike.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import call_aws
from ansible_collections.keyless.aws.plugins.module_utils.common import paginate
from ansible_collections.keyless.aws.plugins.module_utils.credential_chain import KEY_ID
from ansible_collections.keyless.aws.plugins.module_utils.credential_chain import describe_key
from ansible_collections.keyless.aws.plugins.module_utils.validation import check_iam_name

_FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")


def check_fingerprints(values, param="fingerprints"):
    """Fingerprints as credential_sources_info returns them (16 lower-case hex digits)."""
    for index, value in enumerate(values or []):
        if not isinstance(value, str) or not _FINGERPRINT.match(value):
            what = "an access key id" if KEY_ID.fullmatch(str(value)) else "a value of {0} characters".format(
                len(str(value)))
            # The value itself is never echoed: given by mistake, it may be a key id.
            raise KeylessError(
                "{0}: entry {1} is {2}, not a key fingerprint; give the 16 hex digits credential_sources_info "
                "returns (keys[].fingerprint), never a key id.".format(param, index + 1, what), param=param)
    return sorted(set(values or []))


def _iso(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


def _last_used(iam, key_id):
    answer = call_aws("reading when access key ...{0} was last used".format(key_id[-4:]),
                      iam.get_access_key_last_used, AccessKeyId=key_id) or {}
    used = answer.get("AccessKeyLastUsed") or {}
    if not used.get("LastUsedDate"):
        return None  # never used (ServiceName and Region are "N/A")
    return {"date": _iso(used["LastUsedDate"]), "service": used.get("ServiceName"), "region": used.get("Region")}


def read_access_keys(iam, user_names=None, fingerprints=None, with_key_ids=False):
    """Every access key of the account's users (or of ``user_names``): [{user, status, created,
    kind, suffix, account, fingerprint, last_used}], sorted by user and creation. With
    ``fingerprints``, only the matching keys are returned and have their last use read.
    ``with_key_ids``: each entry also holds ``_key_id``, for the caller that must name the key to
    IAM (key_retirement.py), which takes it out before anything is returned."""
    for name in user_names or []:
        check_iam_name(name, "user_names", "user")
    wanted = set(check_fingerprints(fingerprints)) if fingerprints is not None else None
    if user_names:
        users = list(user_names)
    else:
        users = [user["UserName"] for user in
                 call_aws("listing the account's IAM users", paginate, call=iam.list_users, result_key="Users")]
    keys = []
    for user in sorted(users):
        listed = call_aws("listing the access keys of IAM user {0}".format(user), paginate,
                          expected=("NoSuchEntity",) if not user_names else (),
                          call=iam.list_access_keys, result_key="AccessKeyMetadata", UserName=user) or []
        for metadata in listed:
            key_id = metadata["AccessKeyId"]
            entry = describe_key(key_id)
            if wanted is not None and entry["fingerprint"] not in wanted:
                continue
            entry.update(user=user, status=metadata.get("Status"), created=_iso(metadata.get("CreateDate")),
                         last_used=_last_used(iam, key_id))
            if with_key_ids:
                entry["_key_id"] = key_id
            keys.append(entry)
    return sorted(keys, key=lambda key: (key["user"], key["created"] or ""))


def key_owners(iam, user_names=None, fingerprints=None):
    """The module's result: the keys, and the fingerprints asked about that no user of this account
    holds (a key of another account, or one deleted since)."""
    keys = read_access_keys(iam, user_names, fingerprints)
    found = set(key["fingerprint"] for key in keys)
    unmatched = sorted(set(check_fingerprints(fingerprints)) - found) if fingerprints is not None else []
    return {"changed": False, "access_keys": keys, "unmatched_fingerprints": unmatched}
