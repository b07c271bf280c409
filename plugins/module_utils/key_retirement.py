# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Retire static keys in IAM, only when it is safe: deactivate (reversible), delete when asked.

``decide`` is the one rule, pure: a key is deactivated only when no instance holds it any more
(``still_found``), it was not used since it left the instances (IAM's last use is older than
``removed_at``), and the soak window since the removal has passed; it is deleted only when asked
(``state=absent``), when it is already inactive, and after a second window. Anything else leaves
the key as it is and says why: where it still lives, or when it was last used.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

from ansible_collections.keyless.aws.plugins.module_utils.access_keys import check_fingerprints
from ansible_collections.keyless.aws.plugins.module_utils.access_keys import read_access_keys
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import call_aws

STATES = ("inactive", "absent")


def parse_time(value, param):
    """An ISO 8601 time (as host_access_keys and Ansible's ``now()`` give), made aware (UTC if naive)."""
    if isinstance(value, datetime.datetime):
        moment = value
    else:
        try:
            moment = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise KeylessError("{0}: {1!r} is not an ISO 8601 time (for example 2026-12-01T09:30:00+00:00).".format(
                param, str(value)[:40]), param=param)
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def _still_found(params):
    """{fingerprint: [places]}: the task's still_found, and every host of found_on that holds the key."""
    still = params.get("still_found") or {}
    if not isinstance(still, dict):
        raise KeylessError("still_found: give {fingerprint: [places]} (what credential_sources_info still finds).",
                           param="still_found")
    still = dict((key, list(value) if isinstance(value, list) else [value]) for key, value in still.items())
    found_on = params.get("found_on") or {}
    if not isinstance(found_on, dict):
        raise KeylessError("found_on: give {host: what credential_sources_info returned there}.", param="found_on")
    for host in sorted(found_on):
        result = found_on[host]
        if not isinstance(result, dict) or not isinstance(result.get("keys", []), list):
            raise KeylessError("found_on: the entry of host {0} is not a credential_sources_info result.".format(host),
                               param="found_on")
        for key in result.get("keys") or []:
            still.setdefault(key.get("fingerprint"), []).append(host)
    return still


def _removal_times(params):
    """{fingerprint: when it left the last instance}: from removals (host_access_keys results by host), else
    removed_at for every key."""
    times = {}
    removals = params.get("removals") or {}
    if not isinstance(removals, dict):
        raise KeylessError("removals: give {host: what host_access_keys returned there}.", param="removals")
    for host in sorted(removals):
        result = removals[host]
        if not isinstance(result, dict) or not isinstance(result.get("removed_at", {}), dict):
            raise KeylessError("removals: the entry of host {0} is not a host_access_keys result.".format(host),
                               param="removals")
        for value, moment in (result.get("removed_at") or {}).items():
            moment = parse_time(moment, "removals")
            times[value] = max(times.get(value, moment), moment)
    return times


def check_input(params):
    """The task's input, checked before any call."""
    fingerprints = check_fingerprints(params.get("fingerprints"))
    if not fingerprints:
        raise KeylessError("fingerprints: name at least one key (the fingerprints credential_sources_info returns).",
                           param="fingerprints")
    if params.get("state", "inactive") not in STATES:
        raise KeylessError("state: choose inactive or absent.", param="state")
    if not params.get("removed_at") and not params.get("removals"):
        raise KeylessError("removed_at: say when the keys left the instances (removed_at), or give what "
                           "host_access_keys returned on each host (removals).", param="removed_at")
    removed_at = parse_time(params["removed_at"], "removed_at") if params.get("removed_at") else None
    for name in ("soak_hours", "delete_after_hours"):
        value = params.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise KeylessError("{0}: {1!r} is not a number of hours (0 or more).".format(name, value), param=name)
    times = _removal_times(params)
    return {"fingerprints": fingerprints, "state": params.get("state", "inactive"), "removed_at": removed_at,
            "removal_times": times, "soak": datetime.timedelta(hours=params["soak_hours"]),
            "second": datetime.timedelta(hours=params["delete_after_hours"]), "still_found": _still_found(params)}


def decide(key, plan, now):
    """(action, reason): ``deactivate``, ``delete`` or ``keep``, for one key as static_keys_info reads it."""
    places = plan["still_found"].get(key["fingerprint"]) or []
    if places:
        return "keep", "still found on {0} place(s): {1}".format(len(places), ", ".join(str(p) for p in places[:5]))
    removed_at = plan["removal_times"].get(key["fingerprint"]) or plan["removed_at"]
    if removed_at is None:
        return "keep", "no record of its removal from the instances: run host_access_keys, or give removed_at"
    used = key.get("last_used")
    if used and parse_time(used["date"], "last_used") >= removed_at:
        return "keep", "used at {0} ({1}, {2}), after it left the instances at {3}".format(
            used["date"], used.get("service"), used.get("region"), removed_at.isoformat())
    soak_ends = removed_at + plan["soak"]
    if now < soak_ends:
        return "keep", "soaking: not used since it left the instances; deactivate after {0}".format(soak_ends.isoformat())
    if plan["state"] == "inactive":
        return ("keep", "already inactive") if key["status"] == "Inactive" else (
            "deactivate", "no instance holds it and it was not used since {0}".format(removed_at.isoformat()))
    if key["status"] != "Inactive":
        return "keep", "still active: deactivate it first (state=inactive), then delete after delete_after_hours"
    delete_after = soak_ends + plan["second"]
    if now < delete_after:
        return "keep", "inactive; delete after {0}".format(delete_after.isoformat())
    return "delete", "inactive, no instance holds it, not used since {0}".format(removed_at.isoformat())


def retire_keys(iam, params, check_mode, now=None):
    """The module's result: per key, what was done and why; keys asked about that IAM does not hold."""
    plan = check_input(params)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    keys = read_access_keys(iam, fingerprints=plan["fingerprints"], with_key_ids=True)
    results, changed, before, after = [], False, {}, {}
    for key in keys:
        key_id = key.pop("_key_id")
        action, reason = decide(key, plan, now)
        entry = dict(key, action=action, reason=reason)
        label = "{0} ...{1}".format(key["user"], key["suffix"])
        if action != "keep":
            changed = True
            before[label], after[label] = key["status"], "Inactive" if action == "deactivate" else "deleted"
            if not check_mode:
                if action == "deactivate":
                    call_aws("deactivating access key ...{0} of {1}".format(key["suffix"], key["user"]),
                             iam.update_access_key, UserName=key["user"], AccessKeyId=key_id, Status="Inactive")
                    entry["status"] = "Inactive"
                else:
                    call_aws("deleting access key ...{0} of {1}".format(key["suffix"], key["user"]),
                             iam.delete_access_key, UserName=key["user"], AccessKeyId=key_id)
                    entry["status"] = "deleted"
        results.append(entry)
    found = set(key["fingerprint"] for key in results)
    return {"changed": changed, "keys": results,
            "unmatched_fingerprints": sorted(set(plan["fingerprints"]) - found),
            "diff": {"before": before, "after": after}}
