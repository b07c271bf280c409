# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Keys baked into user data (of launch template versions and instances): found by place (line,
kind), never echoed."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import re
import zlib

from ansible_collections.keyless.aws.plugins.module_utils.common import call_aws
from ansible_collections.keyless.aws.plugins.module_utils.common import in_parallel
from ansible_collections.keyless.aws.plugins.module_utils.credential_chain import KEY_ID
from ansible_collections.keyless.aws.plugins.module_utils.credential_chain import describe_key


_SECRET_ASSIGNMENT = re.compile(
    r"(?i)(?:aws_?secret_?access_?key|secret_?access_?key|secretaccesskey)[\"']?\s*(?:=|:|\s)\s*[\"']?"
    r"[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])")


_KIND_TEXT = {"access_key_id": "an AWS access key id", "secret_access_key": "an AWS secret access key"}


def _decoded_user_data(encoded):
    """The text of base64 user data (gzip/zlib compressed user data decompressed); None when unreadable."""
    try:
        raw = base64.b64decode(encoded or "", validate=False)
    except (binascii.Error, ValueError, TypeError):
        return None
    if raw[:2] == b"\x1f\x8b" or raw[:1] == b"\x78":
        try:
            raw = zlib.decompress(raw, 47)
        except zlib.error:
            pass
    return raw.decode("utf-8", "replace")


def scan_user_data(encoded):
    """Where base64 user data holds what looks like AWS keys: [{kind, line}] (with ``key``, the key
    id described as credential_chain.describe_key does: kind, last four, account, fingerprint, so
    static_keys_info finds its owner), never the keys."""
    text = _decoded_user_data(encoded)
    if not text:
        return []
    findings = []
    for number, line in enumerate(text.splitlines(), 1):
        for match in KEY_ID.finditer(line):
            findings.append({"kind": "access_key_id", "line": number, "key": describe_key(match.group(1))})
        if _SECRET_ASSIGNMENT.search(line):
            findings.append({"kind": "secret_access_key", "line": number})
    return findings


def instance_user_data_findings(ec2, instance_ids, warnings, max_workers=1):
    """What looks like a key in the user data of each instance (``DescribeInstanceAttribute``
    ``userData``: one call per instance, the only way EC2 gives it): [{instance_id, findings}], and a
    warning per instance. An instance gone meanwhile is passed over."""
    def read(instance_id):
        answer = call_aws("reading the user data of instance {0}".format(instance_id), ec2.describe_instance_attribute,
                          expected=("InvalidInstanceID.NotFound",), InstanceId=instance_id, Attribute="userData")
        encoded = ((answer or {}).get("UserData") or {}).get("Value")
        return {"instance_id": instance_id, "findings": scan_user_data(encoded)} if encoded else None

    found = [entry for entry in in_parallel(read, sorted(instance_ids), max_workers) if entry and entry["findings"]]
    for entry in found:
        lines = sorted(set(f["line"] for f in entry["findings"]))
        warnings.append(
            "instance {0}: its user data holds what looks like {1} ({2} {3}). Anyone who can read the instance's "
            "attributes or reach its metadata can read them; remove them, deactivate the key, and let the "
            "instance's role give the credentials.".format(
                entry["instance_id"],
                " and ".join(_KIND_TEXT[kind] for kind in _KIND_TEXT if kind in set(f["kind"] for f in entry["findings"])),
                "line" if len(lines) == 1 else "lines", ", ".join(str(line) for line in lines)))
    return found
