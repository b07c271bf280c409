"""metadata_options.py: botocore Stubber pins the exact requests (what moto cannot say); the
sandbox runs the same job end to end in tests/functional/plugins/module_utils/test_metadata_options.py."""

import base64
import datetime
import gzip
import json

import boto3
import pytest
from botocore.stub import ANY
from botocore.stub import Stubber

from ansible_collections.keyless.aws.plugins.module_utils import metadata_account
from ansible_collections.keyless.aws.plugins.module_utils import metadata_options as mo
from ansible_collections.keyless.aws.plugins.module_utils import user_data
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import Timing
from ansible_collections.keyless.aws.plugins.module_utils.credential_chain import describe_key

LT_ID = "lt-0123456789abcdef0"
NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
FAKE_KEY_ID = "AKIA" + "EXAMPLEKEYID0001"  # 16 characters after the prefix
FAKE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # 40 characters


def params(**kwargs):
    base = dict(instance_ids=[], filters={}, launch_templates=[], account_defaults=False, http_tokens="required",
                http_endpoint=None, http_put_response_hop_limit=None, instance_metadata_tags=None,
                http_protocol_ipv6=None, wait=True, wait_timeout=60, set_default_version=True,
                version_description=None, max_concurrency=1)  # Stubber answers in order: one thread
    base.update(kwargs)
    return base


@pytest.fixture
def ec2():
    client = boto3.client("ec2", region_name="us-east-1", aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
                          aws_secret_access_key="x" * 40)
    with Stubber(client) as stubber:
        client.stubber = stubber
        yield client
        stubber.assert_no_pending_responses()


def version(number, options=None, default=False, user_data=None, **data):
    launch_data = dict(data)
    if options is not None:
        launch_data["MetadataOptions"] = options
    if user_data is not None:
        launch_data["UserData"] = user_data
    return {"LaunchTemplateId": LT_ID, "LaunchTemplateName": "web", "VersionNumber": number, "CreateTime": NOW,
            "DefaultVersion": default, "LaunchTemplateData": launch_data}


def instance(instance_id, state="running", **options):
    metadata = {"State": "applied", "HttpTokens": "optional", "HttpPutResponseHopLimit": 1,
                "HttpEndpoint": "enabled", "HttpProtocolIpv6": "disabled", "InstanceMetadataTags": "disabled"}
    metadata.update(options)
    return {"InstanceId": instance_id, "State": {"Name": state, "Code": 16}, "MetadataOptions": metadata}


def reservations(*instances):
    return {"Reservations": [{"ReservationId": "r-1", "Instances": list(instances)}]}


def ids_filter(*ids):
    return [{"Name": "instance-id", "Values": list(ids)}]


# ---- input -------------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [0, 65, -1, True])
def test_hop_limit_out_of_range_fails_naming_the_parameter(limit):
    with pytest.raises(KeylessError) as error:
        mo.validated(params(instance_ids=["i-0123456789abcdef0"], http_put_response_hop_limit=limit))
    assert error.value.param == "http_put_response_hop_limit"
    assert "1 to 64" in error.value.message


@pytest.mark.parametrize("limit", [1, 2, 64])
def test_hop_limits_in_range_are_kept(limit):
    plan, _warnings = mo.validated(params(account_defaults=True, http_put_response_hop_limit=limit))
    assert plan["desired"] == {"HttpTokens": "required", "HttpPutResponseHopLimit": limit}


@pytest.mark.parametrize("entry, fragment", [
    ({"name": "web", "id": LT_ID}, "exactly one of name or id"),
    ({"version": "3"}, "exactly one of name or id"),
    ({"id": "lt-123"}, "not a launch template id"),
    ({"name": "a b"}, "not a launch template name"),
    ({"name": "web", "version": "0"}, "version '0'"),
    ({"name": "web", "version": "$latest"}, "version '$latest'"),
    ({"name": "web", "version": "two"}, "version 'two'"),
])
def test_bad_launch_templates_fail_naming_the_parameter(entry, fragment):
    with pytest.raises(KeylessError) as error:
        mo.validated(params(launch_templates=[entry]))
    assert error.value.param == "launch_templates"
    assert fragment in error.value.message


def test_a_template_named_twice_is_refused():
    with pytest.raises(KeylessError) as error:
        mo.check_launch_templates([{"name": "web"}, {"name": "web", "version": "$Latest"}])
    assert "named twice" in error.value.message


def test_versions_are_normalised():
    checked = mo.check_launch_templates([{"name": "web"}, {"id": LT_ID, "version": 3}, {"name": "b-c", "version": "$Latest"}])
    assert [c["version"] for c in checked] == ["$Default", "3", "$Latest"]


def test_no_target_fails():
    with pytest.raises(KeylessError) as error:
        mo.validated(params())
    assert "No target" in error.value.message


def test_bad_instance_id_fails_naming_the_parameter():
    with pytest.raises(KeylessError) as error:
        mo.validated(params(instance_ids=["i-xyz"]))
    assert error.value.param == "instance_ids"


def test_endpoint_disabled_with_tokens_required_warns_about_credentials():
    _plan, warnings = mo.validated(params(account_defaults=True, http_endpoint="disabled"))
    assert len(warnings) == 1 and "no credentials" in warnings[0]


def test_options_left_unset_are_not_desired():
    plan, warnings = mo.validated(params(account_defaults=True, instance_metadata_tags="enabled"))
    assert plan["desired"] == {"HttpTokens": "required", "InstanceMetadataTags": "enabled"}
    assert warnings == []


# ---- launch templates: the exact requests --------------------------------------------------------


def test_new_version_from_source_version_changes_only_metadata_options(ec2):
    base = version(1, {"HttpTokens": "optional", "HttpPutResponseHopLimit": 2}, default=True,
                   ImageId="ami-12345678", InstanceType="t3.micro")
    ec2.stubber.add_response("describe_launch_template_versions", {"LaunchTemplateVersions": [base]},
                             {"LaunchTemplateName": "web", "Versions": ["$Default", "$Latest"]})
    ec2.stubber.add_response(
        "create_launch_template_version",
        {"LaunchTemplateVersion": version(2, {"HttpTokens": "required", "HttpPutResponseHopLimit": 2})},
        {"ClientToken": ANY, "LaunchTemplateId": LT_ID, "SourceVersion": "1", "VersionDescription": ANY,
         "LaunchTemplateData": {"MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 2}}})
    ec2.stubber.add_response("modify_launch_template", {}, {"LaunchTemplateId": LT_ID, "DefaultVersion": "2"})
    result = mo.manage_metadata_options(ec2, params(launch_templates=[{"name": "web"}]), False)
    assert result["changed"] is True
    assert result["launch_templates"] == [{
        "launch_template_id": LT_ID, "launch_template_name": "web", "base_version": 1, "new_version": 2,
        "matching_version": 2, "default_version": 2, "changed": True,
        "actions": ["version_created", "default_version_set"],
        "before": {"http_tokens": "optional", "http_put_response_hop_limit": 2},
        "after": {"http_tokens": "required", "http_put_response_hop_limit": 2}}]


def test_latest_base_version_without_moving_the_default(ec2):
    ec2.stubber.add_response("describe_launch_template_versions", {"LaunchTemplateVersions": [
        version(3, {"HttpTokens": "optional"}), version(1, None, default=True)]},
        {"LaunchTemplateId": LT_ID, "Versions": ["$Latest", "$Default"]})
    ec2.stubber.add_response(
        "create_launch_template_version", {"LaunchTemplateVersion": version(4, {"HttpTokens": "required"})},
        {"ClientToken": ANY, "LaunchTemplateId": LT_ID, "SourceVersion": "3", "VersionDescription": "hardened",
         "LaunchTemplateData": {"MetadataOptions": {"HttpTokens": "required"}}})
    result = mo.manage_metadata_options(ec2, params(
        launch_templates=[{"id": LT_ID, "version": "$Latest"}], set_default_version=False,
        version_description="hardened"), False)
    template = result["launch_templates"][0]
    assert (template["base_version"], template["new_version"], template["default_version"]) == (3, 4, 1)
    assert template["actions"] == ["version_created"]


def test_numbered_base_version(ec2):
    ec2.stubber.add_response("describe_launch_template_versions", {"LaunchTemplateVersions": [
        version(2, {"HttpTokens": "optional"}), version(5, {"HttpTokens": "optional"}, default=True)]},
        {"LaunchTemplateName": "web", "Versions": ["2", "$Default", "$Latest"]})
    ec2.stubber.add_response(
        "create_launch_template_version", {"LaunchTemplateVersion": version(6, {"HttpTokens": "required"})},
        {"ClientToken": ANY, "LaunchTemplateId": LT_ID, "SourceVersion": "2", "VersionDescription": ANY,
         "LaunchTemplateData": {"MetadataOptions": {"HttpTokens": "required"}}})
    ec2.stubber.add_response("modify_launch_template", {}, {"LaunchTemplateId": LT_ID, "DefaultVersion": "6"})
    result = mo.manage_metadata_options(ec2, params(launch_templates=[{"name": "web", "version": "2"}]), False)
    assert result["launch_templates"][0]["new_version"] == 6


def test_nothing_created_when_the_base_version_already_matches(ec2):
    ec2.stubber.add_response("describe_launch_template_versions", {"LaunchTemplateVersions": [
        version(2, {"HttpTokens": "required", "State": "applied"}, default=True)]},
        {"LaunchTemplateName": "web", "Versions": ["$Default", "$Latest"]})
    result = mo.manage_metadata_options(ec2, params(launch_templates=[{"name": "web"}]), False)
    assert result["changed"] is False
    assert result["launch_templates"][0]["new_version"] is None
    assert result["diff"] == {"before": {}, "after": {}}


def test_matching_base_version_becomes_the_default(ec2):
    ec2.stubber.add_response("describe_launch_template_versions", {"LaunchTemplateVersions": [
        version(3, {"HttpTokens": "required"}), version(1, {}, default=True)]},
        {"LaunchTemplateName": "web", "Versions": ["$Latest", "$Default"]})
    ec2.stubber.add_response("modify_launch_template", {}, {"LaunchTemplateId": LT_ID, "DefaultVersion": "3"})
    result = mo.manage_metadata_options(ec2, params(launch_templates=[{"name": "web", "version": "$Latest"}]), False)
    assert result["launch_templates"][0]["actions"] == ["default_version_set"]
    assert result["launch_templates"][0]["new_version"] is None


def test_latest_version_that_already_is_the_hardened_base_is_reused(ec2):
    data = {"ImageId": "ami-12345678"}
    ec2.stubber.add_response("describe_launch_template_versions", {"LaunchTemplateVersions": [
        version(1, {"HttpTokens": "optional"}, default=True, **data),
        version(2, {"HttpTokens": "required", "State": "applied"}, **data)]},
        {"LaunchTemplateName": "web", "Versions": ["$Default", "$Latest"]})
    result = mo.manage_metadata_options(ec2, params(launch_templates=[{"name": "web"}], set_default_version=False),
                                        False)
    assert result["changed"] is False
    assert result["launch_templates"][0]["matching_version"] == 2


def test_check_mode_predicts_the_version_number_and_calls_nothing_that_mutates(ec2):
    ec2.stubber.add_response("describe_launch_template_versions", {"LaunchTemplateVersions": [
        version(1, None, default=True), version(7, {"HttpTokens": "optional"})]},
        {"LaunchTemplateName": "web", "Versions": ["$Default", "$Latest"]})
    result = mo.manage_metadata_options(ec2, params(launch_templates=[{"name": "web"}]), True)
    template = result["launch_templates"][0]
    assert (template["new_version"], template["default_version"], template["changed"]) == (8, 8, True)
    assert result["diff"][0]["after"] == {"version": 8, "default_version": 8,
                                          "metadata_options": {"http_tokens": "required"}}


@pytest.mark.parametrize("code", ["InvalidLaunchTemplateName.NotFoundException", "InvalidLaunchTemplateId.NotFound"])
def test_unknown_template_fails_before_any_change(ec2, code):
    ec2.stubber.add_response("describe_launch_template_versions", {"LaunchTemplateVersions": [
        version(1, {"HttpTokens": "optional"}, default=True)]})
    ec2.stubber.add_client_error("describe_launch_template_versions", code, "does not exist")
    with pytest.raises(KeylessError) as error:
        mo.manage_metadata_options(ec2, params(launch_templates=[{"name": "web"}, {"name": "nope"}]), False)
    assert error.value.param == "launch_templates"
    assert "'nope'" in error.value.message and "Nothing was changed" in error.value.message


def test_version_that_does_not_exist_fails_and_says_which_exist(ec2):
    ec2.stubber.add_client_error("describe_launch_template_versions", "InvalidLaunchTemplateId.VersionNotFound",
                                 "Could not find the specified version 9")
    ec2.stubber.add_response("describe_launch_template_versions", {"LaunchTemplateVersions": [version(4, {})]},
                             {"LaunchTemplateName": "web", "Versions": ["$Latest"]})
    with pytest.raises(KeylessError) as error:
        mo.manage_metadata_options(ec2, params(launch_templates=[{"name": "web", "version": "9"}]), False)
    assert error.value.param == "launch_templates"
    assert "no version 9" in error.value.message and "from 1 to 4" in error.value.message


# ---- user data ----------------------------------------------------------------------------------


def b64(text, compress=False):
    raw = text.encode()
    return base64.b64encode(gzip.compress(raw) if compress else raw).decode()


@pytest.mark.parametrize("compress", [False, True])
def test_keys_in_user_data_are_reported_by_place_never_echoed(ec2, compress):
    user_data = b64("#!/bin/sh\nexport AWS_ACCESS_KEY_ID={0}\nexport AWS_SECRET_ACCESS_KEY=\"{1}\"\n".format(
        FAKE_KEY_ID, FAKE_SECRET), compress)
    ec2.stubber.add_response("describe_launch_template_versions", {"LaunchTemplateVersions": [
        version(1, {"HttpTokens": "required"}, default=True, user_data=user_data)]})
    result = mo.manage_metadata_options(ec2, params(launch_templates=[{"name": "web"}]), False)
    assert result["user_data_findings"] == [{
        "launch_template_id": LT_ID, "launch_template_name": "web", "version": 1,
        "findings": [{"kind": "access_key_id", "line": 2, "key": describe_key(FAKE_KEY_ID)},
                     {"kind": "secret_access_key", "line": 3}]}]
    assert len(result["warnings"]) == 1 and "'web' version 1" in result["warnings"][0]
    text = json.dumps(result)
    assert FAKE_KEY_ID not in text and FAKE_SECRET not in text and "wJalr" not in text


@pytest.mark.parametrize("text, kinds", [
    ("aws_access_key_id = ASIA" + "Q" * 16, ["access_key_id"]),
    ("[default]\naws_secret_access_key = " + FAKE_SECRET, ["secret_access_key"]),
    ('{"SecretAccessKey": "' + FAKE_SECRET + '"}', ["secret_access_key"]),
    ("aws configure set aws_secret_access_key " + FAKE_SECRET, ["secret_access_key"]),
    ("echo hello; AKIA is a prefix", []),
    ("id=AKIA" + "Q" * 17, []),  # 17 characters: not a key id
    ("aws_secret_access_key = short", []),
    ("the role gives credentials; no keys here", []),
])
def test_scan_user_data(text, kinds):
    assert [f["kind"] for f in user_data.scan_user_data(b64(text))] == kinds


def test_instance_user_data_is_read_per_selected_instance_and_reported_by_place(ec2):
    a, b = "i-0000000000000000a", "i-0000000000000000b"
    ec2.stubber.add_response("describe_instances", reservations(instance(a, HttpTokens="required"),
                                                                instance(b, HttpTokens="required")))
    ec2.stubber.add_response("describe_instance_attribute", {"InstanceId": a, "UserData": {"Value": b64(
        "#!/bin/sh\nexport AWS_ACCESS_KEY_ID={0}\nexport AWS_SECRET_ACCESS_KEY={1}\n".format(FAKE_KEY_ID, FAKE_SECRET))}},
        {"InstanceId": a, "Attribute": "userData"})
    ec2.stubber.add_response("describe_instance_attribute", {"InstanceId": b, "UserData": {}},
                             {"InstanceId": b, "Attribute": "userData"})
    result = mo.manage_metadata_options(ec2, params(instance_ids=[a, b], instance_user_data=True), True)
    assert result["instance_user_data_findings"] == [{"instance_id": a, "findings": [
        {"kind": "access_key_id", "line": 2, "key": describe_key(FAKE_KEY_ID)},
        {"kind": "secret_access_key", "line": 3}]}]
    assert any(w.startswith("instance {0}: its user data holds".format(a)) for w in result["warnings"])
    text = json.dumps(result)
    assert FAKE_KEY_ID not in text and FAKE_SECRET not in text


def test_instance_user_data_needs_instances():
    with pytest.raises(KeylessError) as error:
        mo.validated(params(account_defaults=True, instance_user_data=True))
    assert error.value.param == "instance_user_data"


def test_scan_user_data_tolerates_rubbish():
    assert user_data.scan_user_data("not base64 !!") == []
    assert user_data.scan_user_data(None) == []


# ---- instances ----------------------------------------------------------------------------------


def test_instances_that_differ_get_the_named_options_and_the_module_waits_for_applied(ec2):
    a, b = "i-0123456789abcdef0", "i-0fedcba9876543210"
    ec2.stubber.add_response("describe_instances", reservations(
        instance(a, HttpPutResponseHopLimit=3), instance(b, HttpTokens="required", HttpPutResponseHopLimit=2)),
        {"Filters": ids_filter(a, b), "MaxResults": 1000})
    ec2.stubber.add_response("modify_instance_metadata_options", {"InstanceId": a},
                             {"InstanceId": a, "HttpPutResponseHopLimit": 2, "HttpTokens": "required"})
    ec2.stubber.add_response("describe_instances", reservations(
        instance(a, State="pending", HttpTokens="required", HttpPutResponseHopLimit=2)),
        {"Filters": ids_filter(a), "MaxResults": 1000})
    ec2.stubber.add_response("describe_instances", reservations(
        instance(a, HttpTokens="required", HttpPutResponseHopLimit=2)),
        {"Filters": ids_filter(a), "MaxResults": 1000})
    slept = []
    result = mo.manage_metadata_options(ec2, params(instance_ids=[a, b], http_put_response_hop_limit=2), False,
                                        timing=Timing(sleep=slept.append))
    assert len(slept) == 1
    assert [(r["instance_id"], r["changed"]) for r in result["instances"]] == [(a, True), (b, False)]
    assert result["instances"][0]["after"]["http_put_response_hop_limit"] == 2
    assert [d["before_header"] for d in result["diff"]] == ["instance {0} metadata options".format(a)]


def test_instances_are_described_in_chunks_and_every_page(ec2):
    ids = ["i-%017x" % n for n in range(250)]
    ec2.stubber.add_response("describe_instances", dict(reservations(*[instance(i, HttpTokens="required")
                                                                       for i in ids[:100]]), NextToken="t"),
                             {"Filters": ids_filter(*ids[:200]), "MaxResults": 1000})
    ec2.stubber.add_response("describe_instances", reservations(*[instance(i, HttpTokens="required")
                                                                  for i in ids[100:200]]),
                             {"Filters": ids_filter(*ids[:200]), "MaxResults": 1000, "NextToken": "t"})
    ec2.stubber.add_response("describe_instances", reservations(*[instance(i, HttpTokens="required")
                                                                  for i in ids[200:]]),
                             {"Filters": ids_filter(*ids[200:]), "MaxResults": 1000})
    result = mo.manage_metadata_options(ec2, params(instance_ids=ids), False)
    assert result["changed"] is False and len(result["instances"]) == 250


def test_filters_narrow_the_ids_and_alone_select_live_instances(ec2):
    """One meaning of filters for every module (instances.py): with instance_ids they narrow them,
    as DescribeInstances does with InstanceIds and Filters; alone they select live instances."""
    a, b = "i-0000000000000000a", "i-0000000000000000b"
    ec2.stubber.add_response("describe_instances", reservations(instance(a, HttpTokens="required")),
                             {"Filters": [{"Name": "tag:team", "Values": ["web"]}] + ids_filter(a, b),
                              "MaxResults": 1000})
    ec2.stubber.add_response("describe_instances", reservations(instance(b, HttpTokens="required")),
                             {"Filters": ids_filter(b), "MaxResults": 1000})
    result = mo.manage_metadata_options(ec2, params(instance_ids=[a, b], filters={"tag:team": "web"}), False)
    assert [r["instance_id"] for r in result["instances"]] == [a]
    ec2.stubber.add_response("describe_instances", reservations(instance(b, HttpTokens="required")), {
        "Filters": [{"Name": "tag:team", "Values": ["web"]},
                    {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}],
        "MaxResults": 1000})
    result = mo.manage_metadata_options(ec2, params(filters={"tag:team": "web"}), False)
    assert [r["instance_id"] for r in result["instances"]] == [b]


def test_selection_union_takes_the_ids_and_the_instances_the_filters_match(ec2):
    a, b, c = "i-0000000000000000a", "i-0000000000000000b", "i-0000000000000000c"
    ec2.stubber.add_response("describe_instances", reservations(instance(a, HttpTokens="required")),
                             {"Filters": ids_filter(a), "MaxResults": 1000})
    ec2.stubber.add_response("describe_instances", reservations(instance(a, HttpTokens="required"),
                                                                instance(b, HttpTokens="required")), {
        "Filters": [{"Name": "tag:team", "Values": ["web"]},
                    {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}],
        "MaxResults": 1000})
    result = mo.manage_metadata_options(ec2, params(instance_ids=[a], filters={"tag:team": "web"},
                                                    selection="union"), False)
    assert [r["instance_id"] for r in result["instances"]] == [a, b]
    assert c not in str(result)
    assert set(result["timing"]["seconds"]) == {"read", "plan", "apply", "wait", "total"}


@pytest.mark.parametrize("value", [0, -1, "fast", True])
def test_a_request_rate_that_is_not_a_rate_fails_naming_the_parameter(value):
    with pytest.raises(KeylessError) as error:
        mo.validated(params(instance_ids=["i-0000000000000000a"], max_request_rate=value))
    assert error.value.param == "max_request_rate" and "max_request_rate:" in error.value.message


@pytest.mark.parametrize("value", [0, 101, "ten"])
def test_max_concurrency_out_of_range_fails_naming_the_parameter(value):
    with pytest.raises(KeylessError) as error:
        mo.validated(params(instance_ids=["i-0000000000000000a"], max_concurrency=value))
    assert error.value.param == "max_concurrency"


def test_a_hop_limit_change_names_http_tokens_too(ec2):
    """ModifyInstanceMetadataOptions documents a default for an omitted HttpTokens (may be optional):
    every call carries it, the current value when the user did not name it."""
    a = "i-0000000000000000a"
    ec2.stubber.add_response("describe_instances", reservations(instance(a, HttpTokens="required")))
    ec2.stubber.add_response("modify_instance_metadata_options", {"InstanceId": a},
                             {"InstanceId": a, "HttpPutResponseHopLimit": 2, "HttpTokens": "required"})
    result = mo.manage_metadata_options(ec2, params(instance_ids=[a], http_tokens=None,
                                                    http_put_response_hop_limit=2, wait=False), False)
    assert result["changed"]
    assert result["instances"][0]["after"]["http_tokens"] == "required"


def test_every_named_option_is_sent_when_one_differs(ec2):
    """The task's options are the user's declaration: an endpoint that drops an omitted field (a
    plain moto_server drops HttpEndpoint) still gets it; an instance that holds them all gets no call."""
    a, b = "i-0000000000000000a", "i-0000000000000000b"
    ec2.stubber.add_response("describe_instances", reservations(instance(a), instance(b, HttpTokens="required")))
    ec2.stubber.add_response("modify_instance_metadata_options", {"InstanceId": a},
                             {"InstanceId": a, "HttpTokens": "required", "HttpEndpoint": "enabled"})
    result = mo.manage_metadata_options(ec2, params(instance_ids=[a, b], http_endpoint="enabled", wait=False), False)
    assert [(r["instance_id"], r["changed"]) for r in result["instances"]] == [(a, True), (b, False)]


def test_a_read_back_that_disagrees_once_applied_fails_at_once_naming_the_option(ec2):
    a = "i-0000000000000000a"
    ec2.stubber.add_response("describe_instances", reservations(instance(a)))
    ec2.stubber.add_response("modify_instance_metadata_options", {"InstanceId": a},
                             {"InstanceId": a, "HttpTokens": "required", "HttpEndpoint": "enabled"})
    # Still applying: waited out, even while it disagrees.
    ec2.stubber.add_response("describe_instances", reservations(instance(a, State="pending")))
    # Applied, but HttpEndpoint dropped: no waiting can help.
    dropped = instance(a, HttpTokens="required")
    del dropped["MetadataOptions"]["HttpEndpoint"]
    ec2.stubber.add_response("describe_instances", reservations(dropped))
    slept = []
    with pytest.raises(KeylessError) as error:
        mo.manage_metadata_options(ec2, params(instance_ids=[a], http_endpoint="enabled", wait_timeout=300), False,
                                   timing=Timing(sleep=slept.append))
    assert len(slept) == 1
    assert "http_endpoint was sent as 'enabled' and is reported as None" in error.value.message
    assert a in error.value.message and "Waiting cannot help" in error.value.message
    assert error.value.details["not_applied"] == ["http_endpoint"]


def test_unknown_or_terminated_instances_fail_before_any_change(ec2):
    a, b = "i-0000000000000000a", "i-0000000000000000b"
    ec2.stubber.add_response("describe_instances", reservations(instance(a)))
    with pytest.raises(KeylessError) as error:
        mo.manage_metadata_options(ec2, params(instance_ids=[a, b]), False)
    assert error.value.param == "instance_ids" and b in error.value.message
    ec2.stubber.add_response("describe_instances", reservations(instance(a), instance(b, state="terminated")))
    with pytest.raises(KeylessError) as error:
        mo.manage_metadata_options(ec2, params(instance_ids=[a, b]), False)
    assert error.value.param == "instance_ids" and "terminated" in error.value.message


def test_wait_gives_up_after_the_timeout(ec2):
    a = "i-0000000000000000a"
    ec2.stubber.add_response("describe_instances", reservations(instance(a)))
    ec2.stubber.add_response("modify_instance_metadata_options", {"InstanceId": a})
    for dummy in range(3):
        ec2.stubber.add_response("describe_instances", reservations(instance(a, State="pending",
                                                                             HttpTokens="required")))
    clock = [0.0]
    fake = Timing(sleep=lambda seconds: clock.__setitem__(0, clock[0] + seconds), clock=lambda: clock[0])
    with pytest.raises(KeylessError) as error:
        mo.manage_metadata_options(ec2, params(instance_ids=[a], wait_timeout=3), False, timing=fake)
    assert error.value.param == "wait_timeout" and a in error.value.message


# ---- account defaults ---------------------------------------------------------------------------


def test_account_defaults_get_every_named_option_once_one_differs(ec2):
    ec2.stubber.add_response("get_instance_metadata_defaults", {"AccountLevel": {
        "HttpTokens": "optional", "HttpPutResponseHopLimit": 2, "ManagedBy": "account"}}, {})
    ec2.stubber.add_response("modify_instance_metadata_defaults", {"Return": True},
                             {"HttpTokens": "required", "HttpPutResponseHopLimit": 2})
    ec2.stubber.add_response("get_instance_metadata_defaults", {"AccountLevel": {
        "HttpTokens": "required", "HttpPutResponseHopLimit": 2, "ManagedBy": "account"}}, {})
    result = mo.manage_metadata_options(ec2, params(account_defaults=True, http_put_response_hop_limit=2,
                                                    http_protocol_ipv6="enabled"), False)
    assert result["account_defaults"] == {
        "changed": True,
        "before": {"http_tokens": "optional", "http_put_response_hop_limit": 2},
        "after": {"http_tokens": "required", "http_put_response_hop_limit": 2}}
    assert any("http_protocol_ipv6" in w for w in result["warnings"])


def test_account_defaults_with_no_preference_are_set(ec2):
    ec2.stubber.add_response("get_instance_metadata_defaults", {"AccountLevel": {}}, {})
    result = mo.manage_metadata_options(ec2, params(account_defaults=True), True)
    assert result["account_defaults"] == {"changed": True, "before": {}, "after": {"http_tokens": "required"}}


def test_account_defaults_under_a_declarative_policy_fail_before_any_change(ec2):
    ec2.stubber.add_response("get_instance_metadata_defaults", {"AccountLevel": {
        "HttpTokens": "optional", "ManagedBy": "declarative-policy", "ManagedExceptionMessage": "ask the org team"}})
    with pytest.raises(KeylessError) as error:
        mo.manage_metadata_options(ec2, params(account_defaults=True), False)
    assert error.value.param == "account_defaults" and "ask the org team" in error.value.message


def test_a_retried_version_creation_reuses_its_client_token(ec2):
    from ansible_collections.keyless.aws.plugins.module_utils.common import RetryingClient
    from ansible_collections.keyless.aws.plugins.module_utils.common import RetryPolicy

    tokens = []
    ec2.meta.events.register("provide-client-params.ec2.CreateLaunchTemplateVersion",
                             lambda params, **kwargs: tokens.append(params.get("ClientToken")))
    ec2.stubber.add_response("describe_launch_template_versions", {"LaunchTemplateVersions": [
        version(1, {"HttpTokens": "optional"}, default=True)]})
    ec2.stubber.add_client_error("create_launch_template_version", "InternalError", "try again", 500)
    ec2.stubber.add_response("create_launch_template_version",
                             {"LaunchTemplateVersion": version(2, {"HttpTokens": "required"})})
    ec2.stubber.add_response("modify_launch_template", {})
    client = RetryingClient(ec2, RetryPolicy(sleep=lambda seconds: None))
    result = mo.manage_metadata_options(client, params(launch_templates=[{"name": "web"}]), False)
    assert result["launch_templates"][0]["new_version"] == 2
    assert len(tokens) == 2 and tokens[0] and tokens[0] == tokens[1]


def test_a_template_named_by_name_and_by_id_fails_before_any_change(ec2):
    for dummy in range(2):
        ec2.stubber.add_response("describe_launch_template_versions", {"LaunchTemplateVersions": [
            version(1, {"HttpTokens": "optional"}, default=True)]})
    with pytest.raises(KeylessError) as error:
        mo.manage_metadata_options(ec2, params(launch_templates=[{"name": "web"}, {"id": LT_ID}]), False)
    assert error.value.param == "launch_templates" and "named twice" in error.value.message


# ---- account-level IMDSv2 enforcement (HttpTokensEnforced) --------------------------------------


@pytest.fixture
def autoscaling():
    client = boto3.client("autoscaling", region_name="us-east-1", aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
                          aws_secret_access_key="x" * 40)
    with Stubber(client) as stubber:
        client.stubber = stubber
        yield client
        stubber.assert_no_pending_responses()


def enforce(**kwargs):
    kwargs.setdefault("account_defaults", True)
    kwargs.setdefault("http_tokens_enforced", "enabled")
    return params(**kwargs)


def other_template(number, options=None, default=False, template_id="lt-0fedcba9876543210", name="batch"):
    entry = version(number, options, default=default)
    entry.update(LaunchTemplateId=template_id, LaunchTemplateName=name)
    return entry


ALL_TEMPLATES = {"Versions": ["$Default", "$Latest"], "MaxResults": 200}
ALL_GROUPS = {"MaxRecords": 100}


def group(name, **launch):
    entry = {"AutoScalingGroupName": name, "MinSize": 0, "MaxSize": 1, "DesiredCapacity": 0, "DefaultCooldown": 300,
             "AvailabilityZones": ["us-east-1a"], "HealthCheckType": "EC2", "CreatedTime": NOW}
    entry.update(launch)
    return entry


def test_enforcement_is_enabled_with_http_tokens_when_nothing_would_fail(ec2, autoscaling):
    ec2.stubber.add_response("get_instance_metadata_defaults", {"AccountLevel": {"ManagedBy": "account"}}, {})
    ec2.stubber.add_response("describe_launch_template_versions", {"LaunchTemplateVersions": [
        version(1, {"HttpTokens": "required"}, default=True)]}, ALL_TEMPLATES)
    autoscaling.stubber.add_response("describe_auto_scaling_groups", {"AutoScalingGroups": []}, ALL_GROUPS)
    ec2.stubber.add_response("modify_instance_metadata_defaults", {"Return": True},
                             {"HttpTokens": "required", "HttpTokensEnforced": "enabled"})
    ec2.stubber.add_response("get_instance_metadata_defaults", {"AccountLevel": {
        "HttpTokens": "required", "HttpTokensEnforced": "enabled", "ManagedBy": "account"}}, {})
    result = mo.manage_metadata_options(ec2, enforce(), False, autoscaling=lambda: autoscaling)
    assert result["changed"] is True
    assert result["account_defaults"] == {
        "changed": True, "before": {},
        "after": {"http_tokens": "required", "http_tokens_enforced": "enabled"},
        "enforcement_report": {"launch_templates": [], "auto_scaling_groups": []}}
    assert result["diff"][0]["after"] == {"http_tokens": "required", "http_tokens_enforced": "enabled"}
    assert result["warnings"] == []


def test_enforcement_already_enabled_changes_nothing_and_reads_no_report(ec2):
    ec2.stubber.add_response("get_instance_metadata_defaults", {"AccountLevel": {
        "HttpTokens": "required", "HttpTokensEnforced": "enabled", "ManagedBy": "account"}}, {})

    def no_client():
        raise AssertionError("the Auto Scaling client was made although nothing is enabled")

    result = mo.manage_metadata_options(ec2, enforce(), False, autoscaling=no_client)
    assert result["changed"] is False
    assert result["account_defaults"] == {
        "changed": False, "before": {"http_tokens": "required", "http_tokens_enforced": "enabled"},
        "after": {"http_tokens": "required", "http_tokens_enforced": "enabled"}}


@pytest.mark.parametrize("current, sent", [({}, None), ({"HttpTokensEnforced": "enabled"}, "no-preference"),
                                           ({"HttpTokensEnforced": "disabled"}, "no-preference")])
def test_no_preference_is_the_absent_setting(ec2, current, sent):
    level = dict(current, HttpTokens="required", ManagedBy="account")
    ec2.stubber.add_response("get_instance_metadata_defaults", {"AccountLevel": level}, {})
    if sent:
        ec2.stubber.add_response("modify_instance_metadata_defaults", {"Return": True},
                                 {"HttpTokens": "required", "HttpTokensEnforced": sent})
        ec2.stubber.add_response("get_instance_metadata_defaults", {"AccountLevel": {
            "HttpTokens": "required", "ManagedBy": "account"}}, {})
    result = mo.manage_metadata_options(ec2, enforce(http_tokens_enforced="no-preference"), False)
    assert result["changed"] is bool(sent)
    assert result["account_defaults"]["after"] == {"http_tokens": "required"}
    assert "enforcement_report" not in result["account_defaults"]


def test_disabling_enforcement_needs_no_report(ec2):
    ec2.stubber.add_response("get_instance_metadata_defaults", {"AccountLevel": {
        "HttpTokens": "required", "HttpTokensEnforced": "enabled", "ManagedBy": "account"}}, {})
    result = mo.manage_metadata_options(ec2, enforce(http_tokens_enforced="disabled"), True)
    assert result["account_defaults"]["after"] == {"http_tokens": "required", "http_tokens_enforced": "disabled"}
    assert "enforcement_report" not in result["account_defaults"]


def imdsv1_region(ec2, autoscaling):
    """web allows IMDSv1 in versions 1 ($Default) and 2 ($Latest, HttpTokens unset); batch requires it; groups
    follow web's default (no Version), pin web 1 in a mixed instances policy, use a launch configuration."""
    ec2.stubber.add_response("describe_launch_template_versions", {"LaunchTemplateVersions": [
        version(1, {"HttpTokens": "optional"}, default=True), version(2, {"HttpPutResponseHopLimit": 2}),
        other_template(3, {"HttpTokens": "required"}, default=True)]}, ALL_TEMPLATES)
    autoscaling.stubber.add_response("describe_auto_scaling_groups", {"AutoScalingGroups": [
        group("web-asg", LaunchTemplate={"LaunchTemplateId": LT_ID, "LaunchTemplateName": "web"}),
        group("mixed", MixedInstancesPolicy={"LaunchTemplate": {
            "LaunchTemplateSpecification": {"LaunchTemplateName": "batch", "Version": "$Latest"},
            "Overrides": [{"InstanceType": "c5.large", "LaunchTemplateSpecification": {
                "LaunchTemplateId": "lt-0fedcba9876543210", "Version": "1"}}]}}),
        group("legacy", LaunchConfigurationName="legacy-lc"),
        group("fine", LaunchTemplate={"LaunchTemplateName": "batch", "Version": "$Default"}),
    ]}, ALL_GROUPS)
    ec2.stubber.add_response("describe_launch_template_versions", {"LaunchTemplateVersions": [
        other_template(1, {"HttpTokens": "optional"})]},
        {"LaunchTemplateId": "lt-0fedcba9876543210", "Versions": ["1"], "MaxResults": 200})
    autoscaling.stubber.add_response("describe_launch_configurations", {"LaunchConfigurations": [{
        "LaunchConfigurationName": "legacy-lc", "ImageId": "ami-12345678", "InstanceType": "t3.micro",
        "CreatedTime": NOW, "MetadataOptions": {"HttpTokens": "optional"}}]},
        {"LaunchConfigurationNames": ["legacy-lc"]})


def test_templates_and_groups_that_would_fail_to_launch_refuse_enforcement_before_any_change(ec2, autoscaling):
    ec2.stubber.add_response("get_instance_metadata_defaults", {"AccountLevel": {"ManagedBy": "account"}}, {})
    imdsv1_region(ec2, autoscaling)
    with pytest.raises(KeylessError) as error:
        mo.manage_metadata_options(ec2, enforce(), False, autoscaling=lambda: autoscaling)
    assert error.value.param == "http_tokens_enforced"
    message = error.value.message
    assert "'web' ({0}) version 1 ($Default: http_tokens optional)".format(LT_ID) in message
    assert "'batch' (lt-0fedcba9876543210) version 1 (1: http_tokens optional)" in message
    assert "'web-asg' (launch template 'web' $Default)" in message and "'legacy' (launch configuration" in message
    assert "http_tokens_enforced_force: true" in message and message.endswith("Nothing was changed.")
    assert "pinned to a version number" in message and "replace the launch configurations" in message
    report = error.value.details["account_defaults"]["enforcement_report"]
    # web 2 sets no HttpTokens: the account default this task sets (required) makes it launch.
    assert report["launch_templates"] == [
        {"id": "lt-0fedcba9876543210", "name": "batch", "version_checked": 1, "referenced_as": ["1"],
         "http_tokens": "optional", "http_tokens_from": "launch definition"},
        {"id": LT_ID, "name": "web", "version_checked": 1, "referenced_as": ["$Default"], "http_tokens": "optional",
         "http_tokens_from": "launch definition"}]
    assert [(g["name"], g["launch_template"], g["version"], g["version_number"], g["launch_configuration"])
            for g in report["auto_scaling_groups"]] == [
        ("legacy", None, None, None, "legacy-lc"), ("mixed", "batch", "1", 1, None),
        ("web-asg", "web", "$Default", 1, None)]


def test_check_mode_refuses_as_the_real_run_would(ec2, autoscaling):
    ec2.stubber.add_response("get_instance_metadata_defaults", {"AccountLevel": {"ManagedBy": "account"}}, {})
    imdsv1_region(ec2, autoscaling)
    with pytest.raises(KeylessError) as error:
        mo.manage_metadata_options(ec2, enforce(), True, autoscaling=lambda: autoscaling)
    assert error.value.param == "http_tokens_enforced"


def test_force_enables_enforcement_and_warns_naming_what_will_fail(ec2, autoscaling):
    ec2.stubber.add_response("get_instance_metadata_defaults", {"AccountLevel": {"ManagedBy": "account"}}, {})
    imdsv1_region(ec2, autoscaling)
    ec2.stubber.add_response("modify_instance_metadata_defaults", {"Return": True},
                             {"HttpTokens": "required", "HttpTokensEnforced": "enabled"})
    ec2.stubber.add_response("get_instance_metadata_defaults", {"AccountLevel": {
        "HttpTokens": "required", "HttpTokensEnforced": "enabled", "ManagedBy": "account"}}, {})
    result = mo.manage_metadata_options(ec2, enforce(http_tokens_enforced_force=True), False,
                                        autoscaling=lambda: autoscaling)
    assert result["account_defaults"]["changed"] is True
    assert len(result["account_defaults"]["enforcement_report"]["auto_scaling_groups"]) == 3
    assert len(result["warnings"]) == 1 and "'web-asg'" in result["warnings"][0]


def test_a_template_the_same_task_hardens_does_not_count_and_is_hardened_first(ec2, autoscaling):
    ec2.stubber.add_response("get_instance_metadata_defaults", {"AccountLevel": {"ManagedBy": "account"}}, {})
    ec2.stubber.add_response("describe_launch_template_versions", {"LaunchTemplateVersions": [
        version(1, {"HttpTokens": "optional"}, default=True)]},
        {"LaunchTemplateName": "web", "Versions": ["$Default", "$Latest"]})
    ec2.stubber.add_response("describe_launch_template_versions", {"LaunchTemplateVersions": [
        version(1, {"HttpTokens": "optional"}, default=True)]}, ALL_TEMPLATES)
    autoscaling.stubber.add_response("describe_auto_scaling_groups", {"AutoScalingGroups": [
        group("web-asg", LaunchTemplate={"LaunchTemplateId": LT_ID, "LaunchTemplateName": "web",
                                         "Version": "$Latest"})]}, ALL_GROUPS)
    # The order of the changes: the template first, then the account defaults.
    ec2.stubber.add_response("create_launch_template_version",
                             {"LaunchTemplateVersion": version(2, {"HttpTokens": "required"})}, {
                                 "ClientToken": ANY, "LaunchTemplateId": LT_ID, "SourceVersion": "1",
                                 "VersionDescription": ANY,
                                 "LaunchTemplateData": {"MetadataOptions": {"HttpTokens": "required"}}})
    ec2.stubber.add_response("modify_launch_template", {}, {"LaunchTemplateId": LT_ID, "DefaultVersion": "2"})
    ec2.stubber.add_response("modify_instance_metadata_defaults", {"Return": True},
                             {"HttpTokens": "required", "HttpTokensEnforced": "enabled"})
    ec2.stubber.add_response("get_instance_metadata_defaults", {"AccountLevel": {
        "HttpTokens": "required", "HttpTokensEnforced": "enabled", "ManagedBy": "account"}}, {})
    result = mo.manage_metadata_options(ec2, enforce(launch_templates=[{"name": "web"}]), False,
                                        autoscaling=lambda: autoscaling)
    assert result["account_defaults"]["enforcement_report"] == {"launch_templates": [], "auto_scaling_groups": []}
    assert [entry["before_header"] for entry in result["diff"]] == [
        "launch template web ({0})".format(LT_ID), "account instance metadata defaults"]


def test_a_hardened_template_whose_default_stays_put_still_counts(ec2, autoscaling):
    ec2.stubber.add_response("get_instance_metadata_defaults", {"AccountLevel": {"ManagedBy": "account"}}, {})
    ec2.stubber.add_response("describe_launch_template_versions", {"LaunchTemplateVersions": [
        version(1, {"HttpTokens": "optional"}, default=True)]},
        {"LaunchTemplateName": "web", "Versions": ["$Default", "$Latest"]})
    ec2.stubber.add_response("describe_launch_template_versions", {"LaunchTemplateVersions": [
        version(1, {"HttpTokens": "optional"}, default=True)]}, ALL_TEMPLATES)
    autoscaling.stubber.add_response("describe_auto_scaling_groups", {"AutoScalingGroups": []}, ALL_GROUPS)
    with pytest.raises(KeylessError) as error:
        mo.manage_metadata_options(ec2, enforce(launch_templates=[{"name": "web"}], set_default_version=False), True,
                                   autoscaling=lambda: autoscaling)
    report = error.value.details["account_defaults"]["enforcement_report"]
    assert report["launch_templates"] == [{"id": LT_ID, "name": "web", "version_checked": 1,
                                           "referenced_as": ["$Default"], "http_tokens": "optional",
                                           "http_tokens_from": "launch definition"}]


def test_moving_the_default_off_required_under_enforcement_is_reported(ec2, autoscaling):
    ec2.stubber.add_response("get_instance_metadata_defaults", {"AccountLevel": {
        "HttpTokens": "required", "HttpTokensEnforced": "enabled", "ManagedBy": "account"}}, {})
    ec2.stubber.add_response("describe_launch_template_versions", {"LaunchTemplateVersions": [
        version(1, {"HttpPutResponseHopLimit": 2}, default=True)]}, ALL_TEMPLATES)
    autoscaling.stubber.add_response("describe_auto_scaling_groups", {"AutoScalingGroups": []}, ALL_GROUPS)
    with pytest.raises(KeylessError) as error:
        mo.manage_metadata_options(ec2, params(account_defaults=True, http_tokens="optional"), True,
                                   autoscaling=lambda: autoscaling)
    report = error.value.details["account_defaults"]["enforcement_report"]
    assert report["launch_templates"][0]["http_tokens_from"] == "account default"


def test_enforcement_under_a_declarative_policy_fails_before_any_change(ec2):
    ec2.stubber.add_response("get_instance_metadata_defaults", {"AccountLevel": {
        "HttpTokens": "required", "ManagedBy": "declarative-policy", "ManagedExceptionMessage": "org says no"}})
    with pytest.raises(KeylessError) as error:
        mo.manage_metadata_options(ec2, enforce(), True, autoscaling=lambda: None)
    assert error.value.param == "account_defaults" and "org says no" in error.value.message


def test_enforcement_needs_the_account_defaults_and_tokens_required():
    with pytest.raises(KeylessError) as error:
        mo.validated(params(instance_ids=["i-0123456789abcdef0"], http_tokens_enforced="enabled"))
    assert error.value.param == "http_tokens_enforced" and "account_defaults: true" in error.value.message
    with pytest.raises(KeylessError) as error:
        mo.validated(enforce(http_tokens="optional"))
    assert error.value.param == "http_tokens"
    with pytest.raises(KeylessError) as error:
        mo.validated(enforce(http_tokens_enforced="on"))
    assert error.value.param == "http_tokens_enforced"
    plan, _warnings = mo.validated(enforce(http_tokens="optional", http_tokens_enforced="disabled"))
    assert plan["http_tokens_enforced"] == "disabled" and plan["http_tokens_enforced_force"] is False


@pytest.mark.parametrize("options, account, expected", [
    ({"HttpTokens": "optional"}, {"HttpTokens": "required"}, ("optional", "launch definition")),
    ({}, {"HttpTokens": "required"}, ("required", "account default")),
    ({"HttpPutResponseHopLimit": 2}, {}, ("optional", "EC2 default")),
    (None, {"HttpTokens": "optional"}, ("optional", "account default")),
])
def test_effective_http_tokens(options, account, expected):
    assert metadata_account.effective_http_tokens(options, account) == expected


def test_every_page_of_templates_and_groups_is_read(ec2, autoscaling):
    ec2.stubber.add_response("describe_launch_template_versions", {"LaunchTemplateVersions": [
        version(1, {"HttpTokens": "optional"}, default=True)], "NextToken": "t2"}, ALL_TEMPLATES)
    ec2.stubber.add_response("describe_launch_template_versions", {"LaunchTemplateVersions": [
        version(2, {"HttpTokens": "optional"})]}, dict(ALL_TEMPLATES, NextToken="t2"))
    autoscaling.stubber.add_response("describe_auto_scaling_groups", {"AutoScalingGroups": [], "NextToken": "g2"},
                                     ALL_GROUPS)
    autoscaling.stubber.add_response("describe_auto_scaling_groups", {"AutoScalingGroups": [
        group("late", LaunchTemplate={"LaunchTemplateName": "web", "Version": "$Latest"})]},
        dict(ALL_GROUPS, NextToken="g2"))
    report = metadata_account.enforcement_report(ec2, autoscaling, [], {"HttpTokens": "required"})
    assert [(e["version_checked"], e["referenced_as"]) for e in report["launch_templates"]] == [
        (1, ["$Default"]), (2, ["$Latest"])]
    assert [(g["name"], g["version_number"]) for g in report["auto_scaling_groups"]] == [("late", 2)]


# ---- evidence before enforcement: imdsv1_usage_window, skip_instances_using_imdsv1 ---------------


@pytest.mark.parametrize("kwargs, param, fragment", [
    ({"imdsv1_usage_window": 0}, "imdsv1_usage_window", "from 1 to 455"),
    ({"imdsv1_usage_window": 456}, "imdsv1_usage_window", "from 1 to 455"),
    ({"imdsv1_usage_window": True}, "imdsv1_usage_window", "not a number of days"),
    ({"imdsv1_usage_window": "14"}, "imdsv1_usage_window", "not a number of days"),
    ({"skip_instances_using_imdsv1": True}, "skip_instances_using_imdsv1", "set imdsv1_usage_window"),
    ({"skip_instances_using_imdsv1": "yes", "imdsv1_usage_window": 14}, "skip_instances_using_imdsv1",
     "not true or false"),
    ({"skip_instances_using_imdsv1": True, "imdsv1_usage_window": 14, "http_tokens": "optional"},
     "skip_instances_using_imdsv1", "goes with http_tokens: required"),
    ({"skip_instances_using_imdsv1": True, "imdsv1_usage_window": 14, "http_tokens": None,
      "http_put_response_hop_limit": 2}, "skip_instances_using_imdsv1", "goes with http_tokens: required"),
])
def test_the_imdsv1_evidence_options_are_checked_naming_the_parameter(kwargs, param, fragment):
    with pytest.raises(KeylessError, match=fragment) as failure:
        mo.validated(params(instance_ids=["i-0123456789abcdef0"], **kwargs))
    assert failure.value.param == param


def test_the_window_needs_instances():
    with pytest.raises(KeylessError, match="per instance") as failure:
        mo.validated(params(account_defaults=True, imdsv1_usage_window=14))
    assert failure.value.param == "imdsv1_usage_window"


def test_the_evidence_options_are_kept():
    plan, _warnings = mo.validated(params(filters={"tag:team": "web"}, imdsv1_usage_window=455,
                                          skip_instances_using_imdsv1=True))
    assert (plan["imdsv1_usage_window"], plan["skip_instances_using_imdsv1"]) == (455, True)
    plan, _warnings = mo.validated(params(instance_ids=["i-0123456789abcdef0"]))
    assert (plan["imdsv1_usage_window"], plan["skip_instances_using_imdsv1"]) == (None, False)


def test_a_bad_window_fails_before_any_call(ec2):
    # The Stubber holds no response: any AWS call would fail the test with its own error.
    with pytest.raises(KeylessError) as failure:
        mo.manage_metadata_options(ec2, params(instance_ids=["i-0123456789abcdef0"], imdsv1_usage_window=-1), True,
                                   cloudwatch=lambda: pytest.fail("no CloudWatch client before the input is checked"))
    assert failure.value.param == "imdsv1_usage_window"


def test_skip_reads_only_the_instances_that_would_lose_imdsv1_and_keeps_those_that_used_it(ec2):
    used, unused, already = "i-0000000000000000a", "i-0000000000000000b", "i-0000000000000000c"
    ec2.stubber.add_response("describe_instances", reservations(
        instance(used), instance(unused), instance(already, HttpTokens="required")),
        {"Filters": ids_filter(used, unused, already), "MaxResults": 1000})
    read = []

    class CloudWatch:
        @staticmethod
        def get_metric_data(**kwargs):
            read.append(kwargs)
            stamp = datetime.datetime(2026, 11, 30, tzinfo=datetime.timezone.utc)
            return {"MetricDataResults": [
                {"Id": "served_0", "StatusCode": "Complete", "Timestamps": [stamp], "Values": [6.0]},
                {"Id": "rejected_0", "StatusCode": "Complete", "Timestamps": [], "Values": []},
                {"Id": "served_1", "StatusCode": "Complete", "Timestamps": [], "Values": []}]}

    now = datetime.datetime(2026, 12, 1, 8, tzinfo=datetime.timezone.utc)
    result = mo.manage_metadata_options(
        ec2, params(instance_ids=[used, unused, already], imdsv1_usage_window=14, skip_instances_using_imdsv1=True),
        True, cloudwatch=CloudWatch, now=now)
    assert len(read) == 1
    assert [q["MetricStat"]["Metric"]["Dimensions"][0]["Value"] for q in read[0]["MetricDataQueries"]] == [
        used, used, unused, unused]
    entries = dict((e["instance_id"], e) for e in result["instances"])
    assert (entries[used]["changed"], entries[used]["skipped_for_imdsv1_use"], entries[used]["imdsv1_calls"]) == (
        False, True, 6)
    assert entries[used]["last_imdsv1_call"] == "2026-11-30T00:00:00Z"
    assert (entries[unused]["changed"], entries[unused]["skipped_for_imdsv1_use"],
            entries[unused]["imdsv1_calls"]) == (True, False, 0)
    assert (entries[already]["changed"], entries[already]["imdsv1_calls"]) == (False, None)
    assert result["imdsv1_usage"] == {
        "window_days": 14, "start": "2026-11-17T00:00:00Z", "end": "2026-12-02T00:00:00Z", "period_seconds": 86400,
        "instances_read": 2, "skipped_instances": [{"instance_id": used, "imdsv1_calls": 6,
                                                    "imdsv1_calls_rejected": 0,
                                                    "last_imdsv1_call": "2026-11-30T00:00:00Z"}]}
    assert any(w.startswith("skip_instances_using_imdsv1: 1 of the instances") for w in result["warnings"])


def test_skip_with_nothing_to_change_makes_no_cloudwatch_call(ec2):
    a = "i-0000000000000000a"
    ec2.stubber.add_response("describe_instances", reservations(instance(a, HttpTokens="required")),
                             {"Filters": ids_filter(a), "MaxResults": 1000})
    result = mo.manage_metadata_options(
        ec2, params(instance_ids=[a], imdsv1_usage_window=14, skip_instances_using_imdsv1=True), False,
        cloudwatch=lambda: pytest.fail("no CloudWatch client when nothing would lose IMDSv1"))
    assert result["changed"] is False and result["imdsv1_usage"]["instances_read"] == 0
    assert result["instances"][0]["skipped_for_imdsv1_use"] is False


def test_without_the_window_no_evidence_fields(ec2):
    a = "i-0000000000000000a"
    ec2.stubber.add_response("describe_instances", reservations(instance(a, HttpTokens="required")),
                             {"Filters": ids_filter(a), "MaxResults": 1000})
    result = mo.manage_metadata_options(ec2, params(instance_ids=[a]), False)
    assert result["imdsv1_usage"] is None and "imdsv1_calls" not in result["instances"][0]
