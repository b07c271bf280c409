# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The words every metadata-options concern shares: the five options and their API members, the
account's own, what the task asks for (``desired_options``), what differs (``changes_needed``) and
what one call sends (``call_options``: every option the task names once one differs, always with
``HttpTokens``), and how results show them (``snake_options``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError


# (module option, EC2 API member), in the order results show them.
OPTIONS = (
    ("http_tokens", "HttpTokens"),
    ("http_endpoint", "HttpEndpoint"),
    ("http_put_response_hop_limit", "HttpPutResponseHopLimit"),
    ("instance_metadata_tags", "InstanceMetadataTags"),
    ("http_protocol_ipv6", "HttpProtocolIpv6"),
)


HOP_LIMIT_RANGE = (1, 64)


# The account-level defaults have no IPv6 endpoint setting.
ACCOUNT_OPTIONS = ("HttpTokens", "HttpEndpoint", "HttpPutResponseHopLimit", "InstanceMetadataTags")


# ... and one setting of their own: IMDSv2 enforced at launch. ModifyInstanceMetadataDefaults takes
# HttpTokensEnforced ``enabled``, ``disabled`` or ``no-preference`` (botocore model, shape
# DefaultHttpTokensEnforcedState); GetInstanceMetadataDefaults answers ``enabled`` or ``disabled``
# (HttpTokensEnforcedState), and no member at all when there is no preference.
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifyInstanceMetadataDefaults.html
ENFORCED = "HttpTokensEnforced"


ENFORCED_OPTION = "http_tokens_enforced"


NO_PREFERENCE = "no-preference"


ENFORCED_CHOICES = ("enabled", "disabled", NO_PREFERENCE)


# Evidence before enforcement (imds_usage.py): the IMDSv1 calls of the instances over a window.
WINDOW_OPTION = "imdsv1_usage_window"


SKIP_OPTION = "skip_instances_using_imdsv1"


def desired_options(params):
    """The options to enforce, {API member: value}, from the module's parameters; unset ones left out.
    (The argument spec checks the choices; the hop limit's range is checked here.)"""
    desired = {}
    for option, member in OPTIONS:
        value = params.get(option)
        if value is None:
            continue
        if member == "HttpPutResponseHopLimit":
            if isinstance(value, bool) or not isinstance(value, int) or not (
                    HOP_LIMIT_RANGE[0] <= value <= HOP_LIMIT_RANGE[1]):
                raise KeylessError(
                    "{0}: {1!r} is out of range; EC2 takes a hop limit from 1 to 64 (1 keeps tokens on the instance, "
                    "2 lets containers on the instance reach the metadata service).".format(option, value),
                    param=option,
                )
        desired[member] = value
    return desired


def changes_needed(current, desired, members=None):
    """{member: desired value} for each desired option whose current value differs (or is unset)."""
    return dict((member, value) for member, value in desired.items()
                if (members is None or member in members) and (current or {}).get(member) != value)


def call_options(current, desired, members=None):
    """What one call that sets metadata options sends: nothing when every option the task names
    already holds; else every option the task names (the user's declaration, sent whole, so an
    endpoint that drops an omitted field, as a plain moto_server drops HttpEndpoint, still gets it;
    resending an unchanged value is harmless on EC2), with ``HttpTokens`` (``with_http_tokens``)."""
    named = dict((member, value) for member, value in desired.items() if members is None or member in members)
    if not changes_needed(current, named):
        return {}
    return with_http_tokens(named, current, desired)


def snake_options(options, members=None):
    """The options as the module returns them (snake_case keys, only those that are set)."""
    result = {}
    for option, member in OPTIONS:
        if (members is None or member in members) and (options or {}).get(member) is not None:
            result[option] = options[member]
    return result


_MEMBERS = frozenset(member for _option, member in OPTIONS)


def _options_of(metadata_options):
    """The five settings of a MetadataOptions structure (State and the like dropped)."""
    return dict((member, value) for member, value in (metadata_options or {}).items() if member in _MEMBERS)


def _data_without_state(data):
    data = copy.deepcopy(data or {})
    if "MetadataOptions" in data:
        data["MetadataOptions"] = _options_of(data["MetadataOptions"])
    return data


def with_http_tokens(changes, current, desired):
    """``changes`` plus ``HttpTokens`` (the desired value, else the current one) when there is any
    change: every call that sets metadata options names HttpTokens, so none takes its default."""
    if not changes or "HttpTokens" in changes:
        return changes
    tokens = desired.get("HttpTokens") or (current or {}).get("HttpTokens")
    if tokens is None:
        return changes
    return dict(changes, HttpTokens=tokens)
