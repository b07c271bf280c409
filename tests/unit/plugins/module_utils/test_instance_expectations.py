"""instance_expectations.py: which instances are not as expected, by the rule of the module that
would change them (the instance_profile role runs those modules only there), from one read."""

import boto3
import pytest
from botocore.stub import Stubber

from ansible_collections.keyless.aws.plugins.module_utils import instance_expectations as ie
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError

ARN = "arn:aws:iam::123456789012:instance-profile/web-app"
OTHER = "arn:aws:iam::123456789012:instance-profile/old"
MOVED = "arn:aws:iam::123456789012:instance-profile/team/web-app"  # same name, another path: not the profile
I1, I2, I3, I4, I5 = ("i-0000000000000000{0}".format(n) for n in range(1, 6))
REQUIRED = {"HttpTokens": "required", "HttpEndpoint": "enabled"}


def instance(instance_id, state="running", **options):
    metadata = {"State": "applied", "HttpTokens": "required", "HttpPutResponseHopLimit": 1, "HttpEndpoint": "enabled",
                "HttpProtocolIpv6": "disabled", "InstanceMetadataTags": "disabled"}
    metadata.update(options)
    return {"InstanceId": instance_id, "State": {"Name": state}, "MetadataOptions": metadata}


def association(instance_id, arn, state="associated", number=1):
    return {"AssociationId": "iip-assoc-{0:017x}".format(number), "InstanceId": instance_id, "State": state,
            "IamInstanceProfile": {"Arn": arn, "Id": "AIPA0000000000000000{0}".format(number)}}


def params(**kwargs):
    base = dict(instance_ids=None, filters=None, selection="intersection", instance_profile=None,
                instance_profile_arn=None, expected_instance_profile=None, expected_metadata_options=None)
    base.update(kwargs)
    return base


def options(**kwargs):
    base = dict(http_tokens=None, http_endpoint=None, http_put_response_hop_limit=None, instance_metadata_tags=None,
                http_protocol_ipv6=None)
    base.update(kwargs)
    return base


# ---- the comparison (pure) ---------------------------------------------------------------------


def test_the_profile_is_compared_as_ec2_profile_association_plans_it():
    instances = [instance(I1), instance(I2), instance(I3), instance(I4, state="stopped"), instance(I5)]
    associations = {I1: [association(I1, ARN)], I2: [association(I2, OTHER, number=2)],
                    I4: [association(I4, MOVED, number=4)], I5: [association(I5, ARN, state="associating", number=5)]}
    entries, wrong = ie.compare(instances, associations, profile_arn=ARN)
    assert [(e["instance_id"], e["action"]) for e in entries] == [
        (I1, "unchanged"), (I2, "replaced"), (I3, "associated"), (I4, "replaced"), (I5, "unchanged")]
    # I5 carries it but its association is still in flight: the module waits for it, so it runs.
    assert wrong == {"instance_profile": [I2, I3, I4, I5], "metadata_options": None}
    assert entries[0] == {"instance_id": I1, "association_id": "iip-assoc-00000000000000001",
                          "instance_profile_arn": ARN, "state": "associated", "action": "unchanged"}


def test_a_profile_that_does_not_exist_yet_is_carried_by_no_instance():
    entries, wrong = ie.compare([instance(I1), instance(I2)], {I1: [association(I1, ARN)]}, profile_arn="")
    assert [e["action"] for e in entries] == ["replaced", "associated"]
    assert wrong["instance_profile"] == [I1, I2]


def test_the_metadata_options_are_compared_as_ec2_metadata_options_plans_them():
    instances = [instance(I1), instance(I2, HttpTokens="optional"), instance(I3, HttpPutResponseHopLimit=2),
                 instance(I4, HttpEndpoint="disabled")]
    entries, wrong = ie.compare(instances, {}, desired=REQUIRED)
    # The hop limit is not named: I3's 2 is as expected; I4's endpoint is not.
    assert wrong == {"instance_profile": None, "metadata_options": [I2, I4]}
    assert entries[1]["metadata_options"] == {"http_tokens": "optional", "http_endpoint": "enabled",
                                              "http_put_response_hop_limit": 1, "instance_metadata_tags": "disabled",
                                              "http_protocol_ipv6": "disabled"}
    assert "action" not in entries[1]


def test_a_gone_instance_is_never_as_expected():
    gone = instance(I1, state="terminated")
    _entries, wrong = ie.compare([gone], {}, profile_arn=ARN, desired=REQUIRED)
    assert wrong == {"instance_profile": [I1], "metadata_options": [I1]}


def test_everything_as_expected_leaves_nothing_to_do():
    _entries, wrong = ie.compare([instance(I1), instance(I2)], {I1: [association(I1, ARN)],
                                                                I2: [association(I2, ARN, number=2)]},
                                 profile_arn=ARN, desired=dict(REQUIRED, HttpPutResponseHopLimit=1))
    assert wrong == {"instance_profile": [], "metadata_options": []}


# ---- input -------------------------------------------------------------------------------------


@pytest.mark.parametrize("given, param, fragment", [
    (params(expected_instance_profile="web-app"), "expected_instance_profile", "name them"),
    (params(expected_metadata_options=options(http_tokens="required")), "expected_metadata_options", "name them"),
    (params(instance_ids=[I1], expected_instance_profile=""), "expected_instance_profile", "empty string"),
    (params(instance_ids=[I1], expected_metadata_options=options(http_put_response_hop_limit=65)),
     "expected_metadata_options", "1 to 64"),
    (params(instance_ids=[I1], expected_metadata_options=options()), "expected_metadata_options", "at least one"),
])
def test_bad_expectations_fail_naming_the_parameter(given, param, fragment):
    with pytest.raises(KeylessError) as error:
        ie.checked_expectations(given, "us-east-1")
    assert error.value.param == param
    assert fragment in error.value.message


def test_expectations_checked():
    assert ie.checked_expectations(params(instance_ids=[I1], expected_instance_profile=ARN,
                                          expected_metadata_options=options(http_tokens="required")), "us-east-1") == (
        "web-app", ARN, {"HttpTokens": "required"})
    assert ie.checked_expectations(params(instance_ids=[I1]), "us-east-1") == (None, None, None)


# ---- the read ----------------------------------------------------------------------------------


@pytest.fixture
def clients():
    keys = dict(region_name="us-east-1", aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="x" * 40)
    ec2, iam = boto3.client("ec2", **keys), boto3.client("iam", **keys)
    with Stubber(ec2) as ec2_stub, Stubber(iam) as iam_stub:
        ec2.stubber, iam.stubber = ec2_stub, iam_stub
        yield ec2, iam
        ec2_stub.assert_no_pending_responses()
        iam_stub.assert_no_pending_responses()


def profile_answer(arn=ARN):
    return {"InstanceProfile": {"InstanceProfileName": "web-app", "InstanceProfileId": "AIPA00000000000000001",
                                "Arn": arn, "Path": "/", "Roles": [], "CreateDate": "2026-01-01T00:00:00Z"}}


def test_one_read_of_the_instances_and_their_associations_answers_both(clients):
    ec2, iam = clients
    iam.stubber.add_response("get_instance_profile", profile_answer(), {"InstanceProfileName": "web-app"})
    ec2.stubber.add_response("describe_instances", {"Reservations": [{"Instances": [
        instance(I1), instance(I2, HttpTokens="optional")]}]})
    ec2.stubber.add_response("describe_iam_instance_profile_associations", {"IamInstanceProfileAssociations": [
        association(I1, ARN)]})
    result = ie.read_and_compare(ec2, lambda: iam, params(instance_ids=[I1, I2], expected_instance_profile="web-app",
                                                          expected_metadata_options=options(http_tokens="required")))
    assert result["not_as_expected"] == {"instance_profile": [I2], "metadata_options": [I2]}
    assert [(e["instance_id"], e["action"]) for e in result["associations"]] == [(I1, "unchanged"), (I2, "associated")]
    assert result["changed"] is False


def test_a_profile_iam_does_not_know_counts_as_carried_by_nobody(clients):
    ec2, iam = clients
    iam.stubber.add_client_error("get_instance_profile", "NoSuchEntity", "Instance Profile web-app cannot be found.",
                                 404)
    ec2.stubber.add_response("describe_instances", {"Reservations": [{"Instances": [instance(I1)]}]})
    ec2.stubber.add_response("describe_iam_instance_profile_associations", {"IamInstanceProfileAssociations": [
        association(I1, ARN)]})
    result = ie.read_and_compare(ec2, lambda: iam, params(instance_ids=[I1], expected_instance_profile="web-app"))
    assert result["not_as_expected"] == {"instance_profile": [I1], "metadata_options": None}


def test_an_arn_that_is_not_the_profiles_fails_naming_the_parameter(clients):
    ec2, iam = clients
    iam.stubber.add_response("get_instance_profile", profile_answer(MOVED), {"InstanceProfileName": "web-app"})
    with pytest.raises(KeylessError) as error:
        ie.read_and_compare(ec2, lambda: iam, params(instance_ids=[I1], expected_instance_profile=ARN))
    assert error.value.param == "expected_instance_profile"


def test_no_iam_call_without_a_profile_and_union_selects_both(clients):
    ec2, _iam = clients
    ec2.stubber.add_response("describe_instances", {"Reservations": [{"Instances": [instance(I1)]}]})
    ec2.stubber.add_response("describe_instances", {"Reservations": [{"Instances": [instance(I1), instance(I2)]}]})
    ec2.stubber.add_response("describe_iam_instance_profile_associations", {"IamInstanceProfileAssociations": []})

    def no_iam():
        raise AssertionError("no IAM client is needed")

    result = ie.read_and_compare(ec2, no_iam, params(instance_ids=[I1], filters={"tag:team": "web"},
                                                     selection="union",
                                                     expected_metadata_options=options(http_tokens="required")))
    assert [e["instance_id"] for e in result["associations"]] == [I1, I2]
    assert result["not_as_expected"] == {"instance_profile": None, "metadata_options": []}


# ---- the profile itself, as keyless.aws.iam_instance_profile would leave it ----------------------


def profile(roles=("web-app",), path="/", tags=None):
    return {"InstanceProfileName": "web-app", "Arn": ARN, "Path": path, "InstanceProfileId": "AIPA00000000000000001",
            "Roles": [{"RoleName": r, "Arn": "arn:aws:iam::123456789012:role/" + r, "Path": "/",
                       "RoleId": "AROA00000000000000001", "CreateDate": "2026-12-01T00:00:00Z"} for r in roles],
            "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()]}


DETAILS = {"role": "web-app", "path": "/", "tags": {"team": "web"}, "purge_tags": True}


@pytest.mark.parametrize("found, details, expected", [
    (profile(tags={"team": "web"}), DETAILS, True),
    (profile(tags={"team": "web", "aws:cloudformation:stack-name": "s"}), DETAILS, True),  # aws: tags are never ours
    (None, DETAILS, False),                                                             # not there yet
    (profile(roles=(), tags={"team": "web"}), DETAILS, False),                          # no role yet
    (profile(roles=("old",), tags={"team": "web"}), DETAILS, False),                    # another role
    (profile(tags={}), DETAILS, False),                                                 # a tag missing
    (profile(tags={"team": "web", "extra": "x"}), DETAILS, False),                      # purged
    (profile(tags={"team": "web", "extra": "x"}), dict(DETAILS, purge_tags=False), True),
    (profile(path="/team/", tags={"team": "web"}), DETAILS, False),                     # the module's error, not a skip
    (profile(roles=("old",), tags={}), {"role": None, "path": None, "tags": None, "purge_tags": True}, True),
    (profile(tags={"team": "web"}), dict(DETAILS, role=""), False),                     # the role to be removed
])
def test_profile_as_expected_follows_the_profile_modules_rules(found, details, expected):
    assert ie.profile_as_expected(found, details) is expected


def test_profile_details_need_the_expected_profile():
    with pytest.raises(KeylessError) as error:
        ie.checked_expectations(params(instance_ids=[I1], expected_profile_details=DETAILS))
    assert error.value.param == "expected_profile_details"


def test_read_gives_the_profile_and_whether_it_is_as_expected():
    ec2, iam = boto3.client("ec2", region_name="us-east-1"), boto3.client("iam", region_name="us-east-1")
    with Stubber(ec2) as ec2_stub, Stubber(iam) as iam_stub:
        iam_stub.add_response("get_instance_profile", {"InstanceProfile": dict(profile(tags={"team": "web"}),
                                                                               CreateDate="2026-12-01T00:00:00Z")},
                              {"InstanceProfileName": "web-app"})
        ec2_stub.add_response("describe_instances", {"Reservations": [{"Instances": [instance(I1)]}]})
        ec2_stub.add_response("describe_iam_instance_profile_associations", {
            "IamInstanceProfileAssociations": [association(I1, ARN)]})
        result = ie.read_and_compare(ec2, lambda: iam, params(instance_ids=[I1], expected_instance_profile="web-app",
                                                              expected_profile_details=DETAILS))
    assert result["profile_as_expected"] is True
    assert result["instance_profile"]["arn"] == ARN and result["instance_profile"]["tags"] == {"team": "web"}
    assert result["not_as_expected"]["instance_profile"] == []
