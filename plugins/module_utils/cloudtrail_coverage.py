# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Whether a CloudTrail trail records the write management events of a service in a region
(keyless.aws.cloudtrail_coverage_info): EventBridge receives "AWS API Call via CloudTrail" events
only then ("To record events with a detail-type value of AWS API Call via CloudTrail, a CloudTrail
trail with logging enabled is required", the EventBridge user guide, "AWS service events delivered
via AWS CloudTrail").

A trail records a service's write management events in a region when it is logging
(``GetTrailStatus`` ``IsLogging``), covers the region (multi-region, or homed there; an
organization trail covers the organization's accounts), and its event selectors take them
(``GetEventSelectors``; the CloudTrail user guide, "Logging management events"): none set - every
management event; basic selectors - one with ``IncludeManagementEvents`` (default true),
``ReadWriteType`` ``All`` or ``WriteOnly`` and the service not in ``ExcludeManagementEventSources``;
advanced selectors - one whose ``eventCategory`` admits ``Management``, whose ``readOnly`` (when
set) admits ``false`` and whose ``eventSource`` (when set) admits the service. IAM is a global
service: its events are recorded by a trail with ``IncludeGlobalServiceEvents`` that is
multi-region or homed in us-east-1, and reach EventBridge in us-east-1 only.

The verdict functions are pure; ``coverage`` makes the calls (status and selectors in each
trail's home region, where the trail lives).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import call_aws
from ansible_collections.keyless.aws.plugins.module_utils.common import error_code
from ansible_collections.keyless.aws.plugins.module_utils.common import error_message

GLOBAL_REGION = "us-east-1"
GLOBAL_SERVICES = ("iam.amazonaws.com", "sts.amazonaws.com", "cloudfront.amazonaws.com")
DEFAULT_SOURCES = ("ec2.amazonaws.com", "iam.amazonaws.com")
# Answers meaning "this account may not read that trail's details" (an organization trail seen from
# a member account, a trail of a region the credentials may not use).
UNREADABLE = ("AccessDeniedException", "AccessDenied", "TrailNotFoundException", "CloudTrailARNInvalidException",
              "UnrecognizedClientException", "InvalidTrailNameException", "OperationNotPermittedException")


def check_sources(sources, param="event_sources"):
    bad = [s for s in sources or [] if not isinstance(s, str) or not s.endswith(".amazonaws.com") or " " in s]
    if bad or not sources:
        raise KeylessError("{0}: give event sources as CloudTrail names them, such as ec2.amazonaws.com ({1}).".format(
            param, ", ".join(repr(s) for s in bad) or "none given"), param=param)
    return list(sources)


# ---- verdicts (pure) ---------------------------------------------------------------------------


def _admits(field, value):
    """Whether an advanced field selector admits ``value`` (every operator it names must)."""
    checks = {
        "Equals": lambda vs: value in vs,
        "NotEquals": lambda vs: value not in vs,
        "StartsWith": lambda vs: any(value.startswith(v) for v in vs),
        "NotStartsWith": lambda vs: not any(value.startswith(v) for v in vs),
        "EndsWith": lambda vs: any(value.endswith(v) for v in vs),
        "NotEndsWith": lambda vs: not any(value.endswith(v) for v in vs),
    }
    return all(check(field.get(op) or []) for op, check in checks.items() if field.get(op) is not None)


def selectors_take(selectors, source):
    """(whether the trail's selectors take ``source``'s write management events, why)."""
    basic = (selectors or {}).get("EventSelectors") or []
    advanced = (selectors or {}).get("AdvancedEventSelectors") or []
    if not basic and not advanced:
        return True, "no event selectors: every management event"
    if advanced:
        for selector in advanced:
            fields = dict((f.get("Field"), f) for f in selector.get("FieldSelectors") or [])
            category = fields.get("eventCategory")
            if category is None or not _admits(category, "Management"):
                continue
            if "readOnly" in fields and not _admits(fields["readOnly"], "false"):
                continue
            if "eventSource" in fields and not _admits(fields["eventSource"], source):
                continue
            return True, "advanced selector {0!r} takes them".format(selector.get("Name") or "(unnamed)")
        return False, "no advanced event selector takes the write management events of {0}".format(source)
    for selector in basic:
        if not selector.get("IncludeManagementEvents", True):
            continue
        if selector.get("ReadWriteType", "All") not in ("All", "WriteOnly"):
            continue
        if source in (selector.get("ExcludeManagementEventSources") or []):
            continue
        return True, "an event selector takes management events ({0})".format(selector.get("ReadWriteType", "All"))
    return False, "no event selector takes the write management events of {0}".format(source)


def trail_records(trail, status, selectors, source, region):
    """(whether ``trail`` records ``source``'s write management events of ``region``, why)."""
    if status is None:
        return False, "its status could not be read from this account"
    if not status.get("IsLogging"):
        return False, "it is not logging"
    if source in GLOBAL_SERVICES:
        if not trail.get("IncludeGlobalServiceEvents", True):
            return False, "it does not include global service events"
        if not trail.get("IsMultiRegionTrail") and trail.get("HomeRegion") != GLOBAL_REGION:
            return False, "it records global service events only when multi-region or homed in us-east-1"
    elif not trail.get("IsMultiRegionTrail") and trail.get("HomeRegion") not in (None, region):
        return False, "it records its home region {0} only".format(trail.get("HomeRegion"))
    if selectors is None:
        return False, "its event selectors could not be read from this account"
    return selectors_take(selectors, source)


def verdict(trails, sources, region):
    """{recorded {source: bool}, all_recorded, trails [...], msg, warnings} from what was read:
    ``trails``: [{trail, status, selectors, error}] (status and selectors None when unreadable)."""
    shown, recorded = [], dict((s, False) for s in sources)
    for read in trails:
        trail = read["trail"]
        entry = {
            "name": trail.get("Name"), "arn": trail.get("TrailARN"), "home_region": trail.get("HomeRegion"),
            "is_multi_region_trail": bool(trail.get("IsMultiRegionTrail")),
            "is_organization_trail": bool(trail.get("IsOrganizationTrail")),
            "include_global_service_events": bool(trail.get("IncludeGlobalServiceEvents", True)),
            "is_logging": None if read["status"] is None else bool(read["status"].get("IsLogging")),
            "selectors": _selector_kind(read["selectors"]), "records": {}, "why": {},
        }
        if read.get("error"):
            entry["error"] = read["error"]
        for source in sources:
            takes, why = trail_records(trail, read["status"], read["selectors"], source, region)
            entry["records"][source], entry["why"][source] = takes, why
            recorded[source] = recorded[source] or takes
        shown.append(entry)
    missing = [s for s in sources if not recorded[s]]
    warnings = []
    for source in missing:
        reasons = "; ".join("trail {0}: {1}".format(e["name"], e["why"][source]) for e in shown) or "there is no trail"
        warnings.append(
            "No CloudTrail trail records the write management events of {0}{1}, so EventBridge gets no \"AWS API Call "
            "via CloudTrail\" event of its calls and the guard sees none ({2}). Create a trail that logs management "
            "events (Write or All), multi-region, for example with amazon.aws.cloudtrail (is_multi_region_trail: true, "
            "enable_logging: true).".format(source, "" if source in GLOBAL_SERVICES else " in " + region, reasons))
    if missing:
        msg = "Not recorded by any trail: {0}.".format(", ".join(missing))
    else:
        msg = "Recorded by a logging trail: {0}.".format(", ".join(
            "{0} ({1})".format(s, ", ".join(e["name"] for e in shown if e["records"][s])) for s in sources))
    if any(s in GLOBAL_SERVICES for s in sources) and region != GLOBAL_REGION:
        msg += " IAM's events reach EventBridge in us-east-1 only."
    return {"changed": False, "recorded": recorded, "all_recorded": not missing, "trails": shown, "msg": msg,
            "problems": list(warnings), "warnings": warnings}


def _selector_kind(selectors):
    if selectors is None:
        return None
    if selectors.get("AdvancedEventSelectors"):
        return "advanced"
    if selectors.get("EventSelectors"):
        return "basic"
    return "none"


# ---- reads -------------------------------------------------------------------------------------


def _read(call, **kwargs):
    """(answer, None) or (None, a sentence) when this account may not read it."""
    try:
        return call(**kwargs), None
    except Exception as exc:  # pylint: disable=broad-except
        if error_code(exc) in UNREADABLE:
            return None, "{0}: {1}".format(error_code(exc), error_message(exc))
        raise


def coverage(clients, sources, region):
    """The module's result: ``clients(region)`` gives the CloudTrail client of a region (None: the
    module's)."""
    sources = check_sources(sources)
    answer = call_aws("listing the CloudTrail trails of {0}".format(region), clients(None).describe_trails,
                      includeShadowTrails=True)
    reads = []
    for trail in sorted(answer.get("trailList") or [], key=lambda t: t.get("TrailARN") or ""):
        home = clients(trail.get("HomeRegion") or None)
        name = trail.get("TrailARN") or trail.get("Name")
        status, error = _read(home.get_trail_status, Name=name)
        selectors, error2 = _read(home.get_event_selectors, TrailName=name) if status is not None else (None, None)
        reads.append({"trail": trail, "status": status, "selectors": selectors, "error": error or error2})
    return verdict(reads, sources, region)
