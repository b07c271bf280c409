"""Whether a trail records a service's write management events in a region
(module_utils/cloudtrail_coverage.py): event selectors (none, basic, advanced), logging, regions,
global services, unreadable trails, and the verdict's sentences."""

import pytest

from ansible_collections.keyless.aws.plugins.module_utils import cloudtrail_coverage as coverage
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError

EC2, IAM = "ec2.amazonaws.com", "iam.amazonaws.com"


def trail(name="mgmt", home="us-east-1", multi=True, global_events=True, organization=False):
    return {"Name": name, "TrailARN": "arn:aws:cloudtrail:{0}:123456789012:trail/{1}".format(home, name),
            "HomeRegion": home, "IsMultiRegionTrail": multi, "IncludeGlobalServiceEvents": global_events,
            "IsOrganizationTrail": organization}


def advanced(*fields):
    return {"AdvancedEventSelectors": [{"Name": "mgmt", "FieldSelectors": list(fields)}]}


@pytest.mark.parametrize("selectors, source, takes", [
    ({}, EC2, True),
    ({"EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": True}]}, EC2, True),
    ({"EventSelectors": [{"ReadWriteType": "WriteOnly"}]}, EC2, True),
    ({"EventSelectors": [{"ReadWriteType": "ReadOnly", "IncludeManagementEvents": True}]}, EC2, False),
    ({"EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": False,
                          "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}]}]}, EC2, False),
    ({"EventSelectors": [{"ReadWriteType": "All", "ExcludeManagementEventSources": [EC2]}]}, EC2, False),
    ({"EventSelectors": [{"ReadWriteType": "All", "ExcludeManagementEventSources": ["kms.amazonaws.com"]}]}, EC2, True),
    (advanced({"Field": "eventCategory", "Equals": ["Management"]}), EC2, True),
    (advanced({"Field": "eventCategory", "Equals": ["Management"]}, {"Field": "readOnly", "Equals": ["true"]}), EC2,
     False),
    (advanced({"Field": "eventCategory", "Equals": ["Management"]}, {"Field": "readOnly", "Equals": ["false"]}), EC2,
     True),
    (advanced({"Field": "eventCategory", "Equals": ["Management"]},
              {"Field": "eventSource", "NotEquals": [EC2]}), EC2, False),
    (advanced({"Field": "eventCategory", "Equals": ["Management"]},
              {"Field": "eventSource", "Equals": [EC2]}), IAM, False),
    (advanced({"Field": "eventCategory", "Equals": ["Data"]},
              {"Field": "resources.type", "Equals": ["AWS::S3::Object"]}), EC2, False),
    (advanced({"Field": "readOnly", "Equals": ["false"]}), EC2, False),  # no eventCategory: not a management selector
])
def test_selectors(selectors, source, takes):
    assert coverage.selectors_take(selectors, source)[0] is takes


@pytest.mark.parametrize("the_trail, status, source, region, takes, why", [
    (trail(), {"IsLogging": True}, EC2, "eu-west-1", True, "every management event"),
    (trail(), {"IsLogging": False}, EC2, "us-east-1", False, "not logging"),
    (trail(multi=False, home="eu-west-1"), {"IsLogging": True}, EC2, "us-east-1", False, "home region eu-west-1"),
    (trail(multi=False, home="us-east-1"), {"IsLogging": True}, EC2, "us-east-1", True, ""),
    (trail(multi=False, home="eu-west-1"), {"IsLogging": True}, IAM, "eu-west-1", False, "us-east-1"),
    (trail(multi=False, home="us-east-1"), {"IsLogging": True}, IAM, "eu-west-1", True, ""),
    (trail(global_events=False), {"IsLogging": True}, IAM, "us-east-1", False, "global service events"),
    (trail(organization=True), None, EC2, "us-east-1", False, "could not be read"),
])
def test_a_trail_records_a_service_in_a_region(the_trail, status, source, region, takes, why):
    got, reason = coverage.trail_records(the_trail, status, {}, source, region)
    assert got is takes and why in reason


def test_the_verdict_says_plainly_when_nothing_records():
    result = coverage.verdict([], [EC2, IAM], "eu-west-1")
    assert result["all_recorded"] is False and result["recorded"] == {EC2: False, IAM: False}
    assert len(result["warnings"]) == 2 and result["problems"] == result["warnings"]
    assert "No CloudTrail trail records the write management events of ec2.amazonaws.com in eu-west-1" in \
        result["warnings"][0] and "there is no trail" in result["warnings"][0]
    assert "us-east-1 only" in result["msg"]


def test_the_verdict_names_the_trails_that_record():
    reads = [{"trail": trail("reads"), "status": {"IsLogging": True},
              "selectors": {"EventSelectors": [{"ReadWriteType": "ReadOnly"}]}, "error": None},
             {"trail": trail("all"), "status": {"IsLogging": True}, "selectors": {}, "error": None}]
    result = coverage.verdict(reads, [EC2], "us-east-1")
    assert result["all_recorded"] and result["warnings"] == []
    assert result["msg"] == "Recorded by a logging trail: ec2.amazonaws.com (all)."
    assert [t["selectors"] for t in result["trails"]] == ["basic", "none"]
    one = coverage.verdict(reads[:1], [EC2], "us-east-1")
    assert "trail reads: no event selector takes" in one["warnings"][0]


def test_event_sources_are_checked():
    with pytest.raises(KeylessError) as failed:
        coverage.check_sources(["ec2"])
    assert failed.value.param == "event_sources"
    with pytest.raises(KeylessError):
        coverage.check_sources([])
