"""The sandbox publishes what EventBridge would deliver for mutating EC2 and IAM calls ("AWS API
Call via CloudTrail", tests/sandbox/cloudtrail_events.py): each event the rulebook needs arrives in
an SQS queue through a rule matching ``detail.eventName``, with the fields CloudTrail records; a
refused call carries ``errorCode``; a read-only call publishes nothing; another account's events go
to that account's bus; and nothing flows where AWS would deliver nothing (no trail, a queue policy
that does not let EventBridge in, a disabled rule)."""

import json
import re

import botocore.config
import botocore.exceptions
import pytest

from sandbox.cloudtrail_events import CONTROL_PATH
from sandbox.cloudtrail_events import DETAIL_TYPE
from sandbox.cloudtrail_events import HIDDEN
from sandbox.cloudtrail_events import SENSITIVE
from sandbox.cloudtrail_events import CloudTrailEventsError
from sandbox.cloudtrail_events import pattern_matches
from sandbox.cloudtrail_events import queue_policy_allows
from sandbox.cloudtrail_events import receive_events
from sandbox.cloudtrail_events import route_events
from sandbox.organizations import client_for
from sandbox.organizations import credentials_for
from sandbox.organizations import seed_organization
from sandbox.seed import ACCOUNT
from sandbox.seed import AMI
from sandbox.seed import make_profile

NO_RETRIES = botocore.config.Config(retries={"total_max_attempts": 1})
ISO_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
LAMBDA_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def by_name(name):
    return {"detail": {"eventName": [name]}}


def only(events, name):
    """The one event of ``events``, which must be ``name``'s."""
    assert [e["detail"]["eventName"] for e in events] == [name], events
    return events[0]


def caller_arn(sandbox, client=None):
    return (client or sandbox.client("sts")).get_caller_identity()["Arn"]


def assert_envelope(event, name, source, region, account=ACCOUNT):
    """The fields every "AWS API Call via CloudTrail" event has (module docstring, [E], [R])."""
    assert event["version"] == "0"
    assert event["detail-type"] == DETAIL_TYPE
    assert event["source"] == source
    assert event["account"] == account
    assert event["region"] == region
    assert event["resources"] == []
    assert ISO_SECONDS.match(event["time"])
    assert "ingestion-time" not in event  # moto's own field, no AWS event has it
    detail = event["detail"]
    assert detail["eventVersion"] == "1.11"
    assert detail["eventName"] == name
    assert detail["eventSource"] == source[4:] + ".amazonaws.com"
    assert detail["awsRegion"] == region
    assert ISO_SECONDS.match(detail["eventTime"])
    assert detail["readOnly"] is False
    assert detail["eventType"] == "AwsApiCall"
    assert detail["managementEvent"] is True
    assert detail["eventCategory"] == "Management"
    assert detail["recipientAccountId"] == account
    assert detail["userIdentity"]["accountId"] == account
    assert detail["sourceIPAddress"] == "127.0.0.1"
    assert detail["userAgent"].startswith("Boto3/")
    assert detail["requestID"] and detail["eventID"]
    assert "errorCode" not in detail and "errorMessage" not in detail
    return detail


@pytest.fixture
def instance(sandbox, ec2, instant_transitions):  # pylint: disable=unused-argument
    """A running instance carrying the settled profile "web" (the sandbox's own account)."""
    make_profile(sandbox, "web", settled=True)
    reply = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, IamInstanceProfile={"Name": "web"})
    return reply["Instances"][0]["InstanceId"]


def association_of(ec2, instance_id):
    return ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}])["IamInstanceProfileAssociations"][0]


# ---- each event of the rulebook, through a rule on detail.eventName -----------------------------------


def test_run_instances(sandbox, ec2, instant_transitions):  # pylint: disable=unused-argument
    make_profile(sandbox, "web", settled=True)
    route = route_events(sandbox, "launches", by_name("RunInstances"))
    reply = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, IamInstanceProfile={"Name": "web"},
                              MetadataOptions={"HttpTokens": "optional", "HttpPutResponseHopLimit": 2},
                              UserData="echo keep-me-out-of-events",
                              TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "team", "Value": "42"}]}])
    instance_id = reply["Instances"][0]["InstanceId"]
    detail = assert_envelope(only(receive_events(route), "RunInstances"), "RunInstances", "aws.ec2", "us-east-1")
    request = detail["requestParameters"]
    assert request["instancesSet"] == {"items": [{"imageId": AMI, "minCount": 1, "maxCount": 1}]}
    assert request["iamInstanceProfile"] == {"name": "web"}
    assert request["metadataOptions"] == {"httpTokens": "optional", "httpPutResponseHopLimit": 2}
    assert request["tagSpecificationSet"] == {"items": [{"resourceType": "instance",
                                                         "tags": [{"key": "team", "value": "42"}]}]}
    assert request["userData"] == SENSITIVE and "keep-me-out" not in json.dumps(detail)
    assert request["blockDeviceMapping"] == {} and request["monitoring"] == {"enabled": False}
    response = detail["responseElements"]
    assert response["ownerId"] == ACCOUNT and response["requestId"]
    [item] = response["instancesSet"]["items"]
    assert item["instanceId"] == instance_id
    assert item["metadataOptions"]["httpTokens"] == "optional"
    assert item["iamInstanceProfile"]["arn"].endswith(":instance-profile/web")
    assert isinstance(item["launchTime"], int)  # epoch milliseconds, as CloudTrail records it
    assert detail["userIdentity"]["arn"] == caller_arn(sandbox)


def test_run_instances_without_a_profile_records_an_empty_one(sandbox, ec2):
    """[X1]: no IamInstanceProfile in the request is ``iamInstanceProfile: {}``, not a missing key;
    options the request does not set are not in requestParameters (only in the answer)."""
    route = route_events(sandbox, "launches", by_name("RunInstances"))
    ec2.run_instances(ImageId=AMI, MinCount=2, MaxCount=2)
    detail = only(receive_events(route), "RunInstances")["detail"]
    assert detail["requestParameters"]["iamInstanceProfile"] == {}
    assert "metadataOptions" not in detail["requestParameters"]
    items = detail["responseElements"]["instancesSet"]["items"]
    assert len(items) == 2 and all("iamInstanceProfile" not in i for i in items)
    assert all(i["metadataOptions"]["httpTokens"] for i in items)


def test_modify_instance_metadata_options(sandbox, ec2, instance):
    route = route_events(sandbox, "imds", by_name("ModifyInstanceMetadataOptions"))
    ec2.modify_instance_metadata_options(InstanceId=instance, HttpTokens="optional", HttpPutResponseHopLimit=3)
    detail = assert_envelope(only(receive_events(route), "ModifyInstanceMetadataOptions"),
                             "ModifyInstanceMetadataOptions", "aws.ec2", "us-east-1")
    assert detail["requestParameters"] == {"ModifyInstanceMetadataOptionsRequest": {
        "InstanceId": instance, "HttpTokens": "optional", "HttpPutResponseHopLimit": 3}}
    response = detail["responseElements"]["ModifyInstanceMetadataOptionsResponse"]
    assert response["xmlns"] == "http://ec2.amazonaws.com/doc/2016-11-15/"
    assert response["instanceId"] == instance
    assert response["instanceMetadataOptions"]["httpTokens"] == "optional"
    assert response["instanceMetadataOptions"]["httpPutResponseHopLimit"] == 3


def test_associate_iam_instance_profile(sandbox, ec2, instance):
    make_profile(sandbox, "batch", settled=True)
    ec2.disassociate_iam_instance_profile(AssociationId=association_of(ec2, instance)["AssociationId"])
    route = route_events(sandbox, "profiles", by_name("AssociateIamInstanceProfile"))
    answer = ec2.associate_iam_instance_profile(InstanceId=instance, IamInstanceProfile={"Name": "batch"})
    detail = assert_envelope(only(receive_events(route), "AssociateIamInstanceProfile"),
                             "AssociateIamInstanceProfile", "aws.ec2", "us-east-1")
    assert detail["requestParameters"] == {"AssociateIamInstanceProfileRequest": {
        "InstanceId": instance, "IamInstanceProfile": {"Name": "batch"}}}
    association = detail["responseElements"]["AssociateIamInstanceProfileResponse"]["iamInstanceProfileAssociation"]
    assert association["associationId"] == answer["IamInstanceProfileAssociation"]["AssociationId"]
    assert association["instanceId"] == instance
    assert association["iamInstanceProfile"]["arn"].endswith(":instance-profile/batch")


def test_disassociate_iam_instance_profile(sandbox, ec2, instance):
    association_id = association_of(ec2, instance)["AssociationId"]
    route = route_events(sandbox, "profiles", by_name("DisassociateIamInstanceProfile"))
    ec2.disassociate_iam_instance_profile(AssociationId=association_id)
    detail = assert_envelope(only(receive_events(route), "DisassociateIamInstanceProfile"),
                             "DisassociateIamInstanceProfile", "aws.ec2", "us-east-1")
    assert detail["requestParameters"] == {"DisassociateIamInstanceProfileRequest": {"AssociationId": association_id}}
    association = detail["responseElements"]["DisassociateIamInstanceProfileResponse"]["iamInstanceProfileAssociation"]
    # The request names only the association: the instance is in the answer.
    assert association["instanceId"] == instance and association["associationId"] == association_id


def test_replace_iam_instance_profile_association(sandbox, ec2, instance):
    make_profile(sandbox, "batch", settled=True)
    association_id = association_of(ec2, instance)["AssociationId"]
    route = route_events(sandbox, "profiles", by_name("ReplaceIamInstanceProfileAssociation"))
    ec2.replace_iam_instance_profile_association(AssociationId=association_id,
                                                 IamInstanceProfile={"Arn": "arn:aws:iam::{0}:instance-profile/batch".format(ACCOUNT)})
    detail = assert_envelope(only(receive_events(route), "ReplaceIamInstanceProfileAssociation"),
                             "ReplaceIamInstanceProfileAssociation", "aws.ec2", "us-east-1")
    assert detail["requestParameters"] == {"ReplaceIamInstanceProfileAssociationRequest": {
        "AssociationId": association_id,
        "IamInstanceProfile": {"Arn": "arn:aws:iam::{0}:instance-profile/batch".format(ACCOUNT)}}}
    association = (detail["responseElements"]["ReplaceIamInstanceProfileAssociationResponse"]
                   ["iamInstanceProfileAssociation"])
    assert association["instanceId"] == instance
    assert association["iamInstanceProfile"]["arn"].endswith(":instance-profile/batch")


def test_modify_instance_metadata_defaults(sandbox, ec2):
    route = route_events(sandbox, "defaults", by_name("ModifyInstanceMetadataDefaults"))
    ec2.modify_instance_metadata_defaults(HttpTokens="no-preference", HttpEndpoint="enabled")
    detail = assert_envelope(only(receive_events(route), "ModifyInstanceMetadataDefaults"),
                             "ModifyInstanceMetadataDefaults", "aws.ec2", "us-east-1")
    assert detail["requestParameters"] == {"ModifyInstanceMetadataDefaultsRequest": {
        "HttpTokens": "no-preference", "HttpEndpoint": "enabled"}}
    assert detail["responseElements"]["ModifyInstanceMetadataDefaultsResponse"]["return"] is True


def test_create_launch_template_version_and_modify_launch_template(sandbox, ec2):
    template = ec2.create_launch_template(
        LaunchTemplateName="web", LaunchTemplateData={"ImageId": AMI, "MetadataOptions": {"HttpTokens": "required"},
                                                      "SecurityGroupIds": ["sg-1", "sg-2"]})["LaunchTemplate"]
    versions = route_events(sandbox, "versions", by_name("CreateLaunchTemplateVersion"))
    defaults = route_events(sandbox, "defaults", by_name("ModifyLaunchTemplate"), trail=False)
    ec2.create_launch_template_version(LaunchTemplateId=template["LaunchTemplateId"], SourceVersion="1",
                                       LaunchTemplateData={"MetadataOptions": {"HttpTokens": "optional"},
                                                           "SecurityGroupIds": ["sg-3"], "UserData": "c2VjcmV0"})
    ec2.modify_launch_template(LaunchTemplateId=template["LaunchTemplateId"], DefaultVersion="2")

    detail = assert_envelope(only(receive_events(versions), "CreateLaunchTemplateVersion"),
                             "CreateLaunchTemplateVersion", "aws.ec2", "us-east-1")
    request = detail["requestParameters"]["CreateLaunchTemplateVersionRequest"]
    assert request["LaunchTemplateId"] == template["LaunchTemplateId"]
    assert request["SourceVersion"] == 1  # typed, as every value of this shape ([X4]: "tag": 1)
    data = request["LaunchTemplateData"]
    assert data["MetadataOptions"] == {"HttpTokens": "optional"}
    assert data["SecurityGroupId"] == {"tag": 1, "content": "sg-3"}  # one list item: the item itself
    assert data["UserData"] == SENSITIVE
    version = detail["responseElements"]["CreateLaunchTemplateVersionResponse"]["launchTemplateVersion"]
    assert version["versionNumber"] == 2 and version["defaultVersion"] is False
    assert version["launchTemplateData"]["metadataOptions"]["httpTokens"] == "optional"
    assert version["launchTemplateData"]["userData"] == SENSITIVE
    assert "c2VjcmV0" not in json.dumps(detail)

    detail = assert_envelope(only(receive_events(defaults), "ModifyLaunchTemplate"),
                             "ModifyLaunchTemplate", "aws.ec2", "us-east-1")
    assert detail["requestParameters"]["ModifyLaunchTemplateRequest"]["LaunchTemplateId"] == template["LaunchTemplateId"]
    assert detail["requestParameters"]["ModifyLaunchTemplateRequest"]["SetDefaultVersion"] == 2
    launch_template = detail["responseElements"]["ModifyLaunchTemplateResponse"]["launchTemplate"]
    assert launch_template["launchTemplateId"] == template["LaunchTemplateId"]
    assert launch_template["defaultVersionNumber"] == 2


def test_create_launch_template_lists_of_several_items_are_arrays(sandbox, ec2):
    route = route_events(sandbox, "templates", by_name("CreateLaunchTemplate"))
    ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={"ImageId": AMI,
                                                                             "SecurityGroupIds": ["sg-1", "sg-2"]})
    request = only(receive_events(route), "CreateLaunchTemplate")["detail"]["requestParameters"]
    assert request["CreateLaunchTemplateRequest"]["LaunchTemplateData"]["SecurityGroupId"] == [
        {"tag": 1, "content": "sg-1"}, {"tag": 2, "content": "sg-2"}]


def test_remove_role_from_instance_profile(sandbox, iam):
    make_profile(sandbox, "web")
    route = route_events(sandbox, "iam", by_name("RemoveRoleFromInstanceProfile"))
    iam.remove_role_from_instance_profile(InstanceProfileName="web", RoleName="web")
    detail = assert_envelope(only(receive_events(route), "RemoveRoleFromInstanceProfile"),
                             "RemoveRoleFromInstanceProfile", "aws.iam", "us-east-1")
    assert detail["requestParameters"] == {"instanceProfileName": "web", "roleName": "web"}
    assert detail["responseElements"] is None


def test_update_assume_role_policy_goes_to_us_east_1_whatever_the_client_region(sandbox):
    make_profile(sandbox, "web")
    route = route_events(sandbox, "iam", by_name("UpdateAssumeRolePolicy"))
    elsewhere = route_events(sandbox, "iam-eu", by_name("UpdateAssumeRolePolicy"), region="eu-west-1", trail=False)
    sandbox.client("iam", region_name="eu-west-1", config=NO_RETRIES).update_assume_role_policy(
        RoleName="web", PolicyDocument=LAMBDA_TRUST)
    detail = assert_envelope(only(receive_events(route), "UpdateAssumeRolePolicy"),
                             "UpdateAssumeRolePolicy", "aws.iam", "us-east-1")
    # The document is the JSON text the caller sent, a string, not an object.
    assert detail["requestParameters"] == {"roleName": "web", "policyDocument": LAMBDA_TRUST}
    assert detail["responseElements"] is None
    assert receive_events(elsewhere) == []


def test_ec2_events_go_to_the_bus_of_the_call_region(sandbox):
    here = route_events(sandbox, "here", by_name("ModifyInstanceMetadataDefaults"))
    there = route_events(sandbox, "there", by_name("ModifyInstanceMetadataDefaults"), region="eu-west-1", trail=False)
    sandbox.client("ec2", region_name="eu-west-1", config=NO_RETRIES).modify_instance_metadata_defaults(
        HttpTokens="required")
    assert receive_events(here) == []
    event = only(receive_events(there), "ModifyInstanceMetadataDefaults")
    assert event["region"] == event["detail"]["awsRegion"] == "eu-west-1"


# ---- failures, read-only calls ----------------------------------------------------------------------------


def test_a_refused_ec2_call_carries_its_error_code(sandbox, ec2):
    route = route_events(sandbox, "imds", by_name("ModifyInstanceMetadataOptions"))
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        ec2.modify_instance_metadata_options(InstanceId="i-0123456789abcdef0", HttpTokens="optional")
    detail = only(receive_events(route), "ModifyInstanceMetadataOptions")["detail"]
    assert detail["errorCode"] == "Client." + refused.value.response["Error"]["Code"]
    assert detail["errorMessage"] == refused.value.response["Error"]["Message"]
    assert detail["responseElements"] is None
    assert detail["requestParameters"]["ModifyInstanceMetadataOptionsRequest"]["HttpTokens"] == "optional"


def test_a_dry_run_is_a_refused_call(sandbox, ec2, instance):
    route = route_events(sandbox, "imds", by_name("ModifyInstanceMetadataOptions"))
    with pytest.raises(botocore.exceptions.ClientError):
        ec2.modify_instance_metadata_options(InstanceId=instance, HttpTokens="optional", DryRun=True)
    detail = only(receive_events(route), "ModifyInstanceMetadataOptions")["detail"]
    assert detail["errorCode"] == "Client.DryRunOperation"
    assert detail["requestParameters"]["ModifyInstanceMetadataOptionsRequest"]["DryRun"] is True


def test_a_throttled_call_is_published_with_its_error_code(sandbox, ec2, instance):
    route = route_events(sandbox, "imds", by_name("ModifyInstanceMetadataOptions"))
    with sandbox.limits.aws_like(latency={"*": 0}, buckets={"ec2": {"metadata_options": {"capacity": 1, "refill": 0.01}}}):
        ec2.modify_instance_metadata_options(InstanceId=instance, HttpTokens="required")
        with pytest.raises(botocore.exceptions.ClientError):
            ec2.modify_instance_metadata_options(InstanceId=instance, HttpTokens="required")
    events = receive_events(route)
    assert [e["detail"].get("errorCode") for e in events] == [None, "Client.RequestLimitExceeded"]


def test_a_refused_iam_call_carries_iams_exception_name(sandbox, iam):
    route = route_events(sandbox, "iam", by_name("RemoveRoleFromInstanceProfile"))
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        iam.remove_role_from_instance_profile(InstanceProfileName="gone", RoleName="gone")
    detail = only(receive_events(route), "RemoveRoleFromInstanceProfile")["detail"]
    assert refused.value.response["Error"]["Code"] == "NoSuchEntity"
    assert detail["errorCode"] == "NoSuchEntityException"  # [X6]
    assert detail["errorMessage"] == refused.value.response["Error"]["Message"]
    assert detail["responseElements"] is None


def test_read_only_calls_publish_nothing(sandbox, ec2, iam, instance):
    route = route_events(sandbox, "everything", {"source": ["aws.ec2", "aws.iam"]})
    published = sandbox.cloudtrail_events.stats()["published"]
    ec2.describe_instances(InstanceIds=[instance])
    ec2.describe_iam_instance_profile_associations()
    ec2.get_instance_metadata_defaults()
    iam.get_role(RoleName="web")
    iam.list_instance_profiles()
    assert receive_events(route) == []
    assert sandbox.cloudtrail_events.stats()["published"] == published
    ec2.create_tags(Resources=[instance], Tags=[{"Key": "a", "Value": "b"}])
    detail = only(receive_events(route), "CreateTags")["detail"]
    assert detail["requestParameters"] == {"resourcesSet": {"items": [{"resourceId": instance}]},
                                           "tagSet": {"items": [{"key": "a", "value": "b"}]}}


# ---- who, which account ----------------------------------------------------------------------------------


def test_another_accounts_event_goes_to_that_accounts_bus(sandbox):
    org = seed_organization(sandbox, [{"name": "dev"}])
    member = org["ids"]["dev"]
    credentials = credentials_for(sandbox, member, session_name="drift-maker")

    def member_client(service, region):
        return client_for(sandbox, credentials, service, region_name=region, config=NO_RETRIES)

    theirs = route_events(sandbox, "drift", by_name("ModifyInstanceMetadataDefaults"), client=member_client)
    ours = route_events(sandbox, "drift", by_name("ModifyInstanceMetadataDefaults"))
    member_client("ec2", "us-east-1").modify_instance_metadata_defaults(HttpTokens="optional")

    assert receive_events(ours) == []
    event = only(receive_events(theirs), "ModifyInstanceMetadataDefaults")
    detail = assert_envelope(event, "ModifyInstanceMetadataDefaults", "aws.ec2", "us-east-1", account=member)
    identity = detail["userIdentity"]
    assert identity["type"] == "AssumedRole"
    assert identity["arn"] == credentials["arn"] == caller_arn(sandbox, member_client("sts", "us-east-1"))
    assert identity["accessKeyId"] == credentials["access_key"]
    assert identity["principalId"].endswith(":drift-maker")
    issuer = identity["sessionContext"]["sessionIssuer"]
    assert issuer == {"type": "Role", "principalId": identity["principalId"].split(":")[0],
                      "arn": credentials["role_arn"], "accountId": member,
                      "userName": credentials["role_arn"].rsplit("/", 1)[-1]}
    assert credentials["secret_key"] not in json.dumps(event)
    assert credentials["session_token"] not in json.dumps(event)

    sandbox.client("ec2", config=NO_RETRIES).modify_instance_metadata_defaults(HttpTokens="required")
    assert receive_events(theirs) == []
    assert only(receive_events(ours), "ModifyInstanceMetadataDefaults")["account"] == ACCOUNT


def test_an_organization_trail_records_member_accounts(sandbox):
    org = seed_organization(sandbox, [{"name": "dev"}])
    member = org["ids"]["dev"]
    credentials = credentials_for(sandbox, member)

    def member_client(service, region):
        return client_for(sandbox, credentials, service, region_name=region, config=NO_RETRIES)

    route = route_events(sandbox, "drift", by_name("ModifyInstanceMetadataDefaults"), client=member_client, trail=False)
    member_client("ec2", "us-east-1").modify_instance_metadata_defaults(HttpTokens="optional")
    assert receive_events(route) == []  # no trail records the member's calls yet
    sandbox.client("s3").create_bucket(Bucket="org-trail")
    cloudtrail = sandbox.client("cloudtrail")
    cloudtrail.create_trail(Name="org", S3BucketName="org-trail", IsMultiRegionTrail=True, IsOrganizationTrail=True)
    cloudtrail.start_logging(Name="org")
    member_client("ec2", "us-east-1").modify_instance_metadata_defaults(HttpTokens="required")
    assert only(receive_events(route), "ModifyInstanceMetadataDefaults")["account"] == member


def test_an_iam_users_call_names_the_user(sandbox, iam):
    iam.create_user(UserName="alice")
    key = iam.create_access_key(UserName="alice")["AccessKey"]
    route = route_events(sandbox, "iam", by_name("CreateAccessKey"))
    alice = {"access_key": key["AccessKeyId"], "secret_key": key["SecretAccessKey"], "session_token": None}
    answer = client_for(sandbox, alice, "iam", config=NO_RETRIES).create_access_key(UserName="alice")["AccessKey"]
    event = only(receive_events(route), "CreateAccessKey")
    identity = event["detail"]["userIdentity"]
    assert identity["type"] == "IAMUser" and identity["userName"] == "alice"
    assert identity["arn"] == "arn:aws:iam::{0}:user/alice".format(ACCOUNT)
    assert identity["accessKeyId"] == key["AccessKeyId"]
    created = event["detail"]["responseElements"]["accessKey"]
    assert created["accessKeyId"] == answer["AccessKeyId"] and "secretAccessKey" not in created
    assert answer["SecretAccessKey"] not in json.dumps(event)
    assert sandbox.SECRET_KEY not in json.dumps(sandbox.cloudtrail_events.published())


def test_a_password_parameter_is_hidden(sandbox, iam):
    iam.create_user(UserName="bob")
    route = route_events(sandbox, "iam", by_name("CreateLoginProfile"))
    iam.create_login_profile(UserName="bob", Password="Correct-Horse-9")
    detail = only(receive_events(route), "CreateLoginProfile")["detail"]
    assert detail["requestParameters"]["password"] == HIDDEN
    assert "Correct-Horse-9" not in json.dumps(detail)


# ---- what AWS needs before it delivers anything --------------------------------------------------------


def test_no_trail_no_event(sandbox, ec2):
    route = route_events(sandbox, "drift", by_name("ModifyInstanceMetadataDefaults"), trail=False)
    ec2.modify_instance_metadata_defaults(HttpTokens="optional")
    assert receive_events(route) == []
    assert sandbox.cloudtrail_events.stats()["not_recorded"] == 1
    with sandbox.cloudtrail_events.disabled("trail_required"):
        ec2.modify_instance_metadata_defaults(HttpTokens="optional")
    assert len(receive_events(route)) == 1
    assert sandbox.cloudtrail_events.rules["trail_required"] is True


def test_a_trail_that_stopped_logging_or_takes_no_writes_records_nothing(sandbox, ec2):
    route = route_events(sandbox, "drift", by_name("ModifyInstanceMetadataDefaults"), trail=False)
    sandbox.client("s3").create_bucket(Bucket="trail")
    cloudtrail = sandbox.client("cloudtrail")
    cloudtrail.create_trail(Name="reads", S3BucketName="trail")
    cloudtrail.start_logging(Name="reads")
    cloudtrail.put_event_selectors(TrailName="reads", EventSelectors=[{"ReadWriteType": "ReadOnly"}])
    ec2.modify_instance_metadata_defaults(HttpTokens="optional")
    assert receive_events(route) == []
    cloudtrail.put_event_selectors(TrailName="reads", EventSelectors=[{"ReadWriteType": "All",
                                                                       "IncludeManagementEvents": True}])
    ec2.modify_instance_metadata_defaults(HttpTokens="optional")
    assert len(receive_events(route)) == 1
    cloudtrail.stop_logging(Name="reads")
    ec2.modify_instance_metadata_defaults(HttpTokens="optional")
    assert receive_events(route) == []
    cloudtrail.start_logging(Name="reads")
    cloudtrail.put_event_selectors(TrailName="reads", AdvancedEventSelectors=[{"Name": "management", "FieldSelectors": [
        {"Field": "eventCategory", "Equals": ["Management"]}, {"Field": "readOnly", "Equals": ["false"]}]}])
    ec2.modify_instance_metadata_defaults(HttpTokens="optional")
    assert len(receive_events(route)) == 1


def test_a_single_region_trail_records_its_region_only(sandbox):
    sandbox.client("s3").create_bucket(Bucket="trail")
    cloudtrail = sandbox.client("cloudtrail", region_name="eu-west-1")
    cloudtrail.create_trail(Name="eu-trail", S3BucketName="trail", IsMultiRegionTrail=False)
    cloudtrail.start_logging(Name="eu-trail")
    here = route_events(sandbox, "here", by_name("ModifyInstanceMetadataDefaults"), trail=False)
    there = route_events(sandbox, "there", by_name("ModifyInstanceMetadataDefaults"), region="eu-west-1", trail=False)
    sandbox.client("ec2", config=NO_RETRIES).modify_instance_metadata_defaults(HttpTokens="optional")
    sandbox.client("ec2", region_name="eu-west-1", config=NO_RETRIES).modify_instance_metadata_defaults(
        HttpTokens="optional")
    assert receive_events(here) == []
    assert len(receive_events(there)) == 1


def test_a_queue_whose_policy_keeps_eventbridge_out_gets_nothing(sandbox, ec2):
    route = route_events(sandbox, "drift", by_name("ModifyInstanceMetadataDefaults"))
    sqs = sandbox.client("sqs")
    sqs.set_queue_attributes(QueueUrl=route["queue_url"], Attributes={"Policy": ""})
    ec2.modify_instance_metadata_defaults(HttpTokens="optional")
    assert receive_events(route) == []
    [failure] = sandbox.cloudtrail_events.stats()["failed_invocations"]
    assert failure["target"] == route["queue_arn"] and "queue policy" in failure["reason"]
    with sandbox.cloudtrail_events.disabled("queue_policy"):
        ec2.modify_instance_metadata_defaults(HttpTokens="optional")
    assert len(receive_events(route)) == 1


def test_queue_policy_verdicts():
    queue, rule = "arn:aws:sqs:us-east-1:111122223333:q", "arn:aws:events:us-east-1:111122223333:rule/r"

    def policy(*statements):
        return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})

    allow = {"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
             "Resource": queue}
    assert queue_policy_allows(policy(allow), queue, rule, "111122223333") == "allow"
    assert queue_policy_allows(None, queue, rule, "111122223333") == "implicit"
    other_rule = dict(allow, Condition={"ArnEquals": {"aws:SourceArn": rule + "-other"}})
    assert queue_policy_allows(policy(other_rule), queue, rule, "111122223333") == "implicit"
    this_rule = dict(allow, Condition={"ArnEquals": {"aws:SourceArn": rule}})
    assert queue_policy_allows(policy(this_rule), queue, rule, "111122223333") == "allow"
    other_account = dict(allow, Condition={"StringEquals": {"aws:SourceAccount": "444455556666"}})
    assert queue_policy_allows(policy(other_account), queue, rule, "111122223333") == "implicit"
    wrong_principal = dict(allow, Principal={"Service": "sns.amazonaws.com"})
    assert queue_policy_allows(policy(wrong_principal), queue, rule, "111122223333") == "implicit"
    wildcard = dict(allow, Principal="*", Action="sqs:*", Resource="arn:aws:sqs:*:111122223333:*")
    assert queue_policy_allows(policy(wildcard), queue, rule, "111122223333") == "allow"
    deny = dict(allow, Effect="Deny")
    assert queue_policy_allows(policy(allow, deny), queue, rule, "111122223333") == "deny"


def test_a_disabled_rule_routes_nothing(sandbox, ec2):
    route = route_events(sandbox, "drift", by_name("ModifyInstanceMetadataDefaults"))
    events = sandbox.client("events")
    events.disable_rule(Name="keyless-drift")
    ec2.modify_instance_metadata_defaults(HttpTokens="optional")
    assert receive_events(route) == []
    events.enable_rule(Name="keyless-drift")
    ec2.modify_instance_metadata_defaults(HttpTokens="optional")
    assert len(receive_events(route)) == 1


def test_a_pattern_inside_an_array_of_objects_routes_as_on_aws(sandbox, ec2, instant_transitions):  # pylint: disable=unused-argument
    """moto's own PutEvents never matches inside ``instancesSet.items``; EventBridge does."""
    route = route_events(sandbox, "imdsv1-launches", {
        "source": ["aws.ec2"], "detail-type": [DETAIL_TYPE],
        "detail": {"eventName": ["RunInstances"], "errorCode": [{"exists": False}],
                   "responseElements": {"instancesSet": {"items": {"metadataOptions": {"httpTokens": ["optional"]}}}}}})
    ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, MetadataOptions={"HttpTokens": "required"})
    assert receive_events(route) == []
    ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, MetadataOptions={"HttpTokens": "optional"})
    assert len(receive_events(route)) == 1


def test_input_path_and_a_fifo_queue(sandbox, ec2):
    route = route_events(sandbox, "drift", by_name("ModifyInstanceMetadataDefaults"))
    sqs = sandbox.client("sqs")
    fifo_url = sqs.create_queue(QueueName="drift.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    fifo_arn = sqs.get_queue_attributes(QueueUrl=fifo_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    with sandbox.cloudtrail_events.disabled("queue_policy"):
        sandbox.client("events").put_targets(Rule="keyless-drift", Targets=[
            {"Id": "detail", "Arn": route["queue_arn"], "InputPath": "$.detail"},
            {"Id": "fifo", "Arn": fifo_arn, "SqsParameters": {"MessageGroupId": "drift"}}])
        ec2.modify_instance_metadata_defaults(HttpTokens="optional")
    bodies = receive_events(route, limit=2)  # the whole event (target "queue") and its detail alone
    assert sorted(b.get("eventName") or b["detail"]["eventName"] + " (whole)" for b in bodies) == [
        "ModifyInstanceMetadataDefaults", "ModifyInstanceMetadataDefaults (whole)"]
    fifo = sqs.receive_message(QueueUrl=fifo_url)["Messages"]
    assert json.loads(fifo[0]["Body"])["detail"]["eventName"] == "ModifyInstanceMetadataDefaults"


# ---- event patterns (pure) -------------------------------------------------------------------------------

EVENT = {"source": "aws.ec2", "detail-type": DETAIL_TYPE, "detail": {
    "eventName": "RunInstances", "awsRegion": "eu-west-1", "sourceIPAddress": "10.0.0.7", "hop": 3,
    "requestParameters": {"iamInstanceProfile": {}},
    "responseElements": {"instancesSet": {"items": [{"instanceId": "i-1", "metadataOptions": {"httpTokens": "required"}},
                                                    {"instanceId": "i-2", "metadataOptions": {"httpTokens": "optional"}}]}},
    "tags": ["a", "b"]}}


@pytest.mark.parametrize("pattern, matches", [
    ({"source": ["aws.ec2"]}, True),
    ({"source": ["aws.iam"]}, False),
    ({"detail": {"eventName": ["RunInstances", "StartInstances"]}}, True),
    ({"detail": {"eventName": [{"prefix": "Run"}]}}, True),
    ({"detail": {"eventName": [{"suffix": "Instances"}]}}, True),
    ({"detail": {"eventName": [{"equals-ignore-case": "runinstances"}]}}, True),
    ({"detail": {"eventName": [{"anything-but": ["RunInstances"]}]}}, False),
    ({"detail": {"eventName": [{"anything-but": {"prefix": "Describe"}}]}}, True),
    ({"detail": {"errorCode": [{"exists": False}]}}, True),
    ({"detail": {"errorCode": [{"exists": True}]}}, False),
    ({"detail": {"requestParameters": {"iamInstanceProfile": {"name": [{"exists": True}]}}}}, False),
    ({"detail": {"responseElements": {"instancesSet": {"items": {"instanceId": ["i-2"]}}}}}, True),
    ({"detail": {"responseElements": {"instancesSet": {"items": {"metadataOptions": {"httpTokens": ["optional"]}}}}}}, True),
    ({"detail": {"tags": ["b"]}}, True),
    ({"detail": {"hop": [{"numeric": [">", 2, "<=", 3]}]}}, True),
    ({"detail": {"hop": ["3"]}}, False),
    ({"detail": {"sourceIPAddress": [{"cidr": "10.0.0.0/24"}]}}, True),
    ({"detail": {"awsRegion": [{"wildcard": "eu-*-1"}]}}, True),
    ({"detail": {"$or": [{"eventName": ["StopInstances"]}, {"awsRegion": ["eu-west-1"]}]}}, True),
    ({"detail": {"$or": [{"eventName": ["StopInstances"]}, {"awsRegion": ["us-east-1"]}]}}, False),
    ({}, False),
])
def test_pattern_matching(pattern, matches):
    assert pattern_matches(pattern, EVENT) is matches


# ---- control ------------------------------------------------------------------------------------------


def test_control_api(sandbox, ec2):
    status, answer = sandbox.control("GET", CONTROL_PATH)
    assert status == 200 and answer["enabled"] is True and answer["rules"] == {"trail_required": True,
                                                                               "queue_policy": True}
    status, answer = sandbox.control("POST", CONTROL_PATH, {"disable": ["trail_required"], "delay": 5})
    assert status == 200 and answer["rules"]["trail_required"] is False and answer["delay"] == 5
    status, answer = sandbox.control("POST", CONTROL_PATH, {"disable": ["no_such_rule"]})
    assert status == 400 and "no_such_rule" in answer["error"]
    route = route_events(sandbox, "drift", by_name("ModifyInstanceMetadataDefaults"), trail=False)
    ec2.modify_instance_metadata_defaults(HttpTokens="optional")
    # Not yet (5 s later; a margin a loaded machine keeps, where 0.2 s failed one CI run), then delivered.
    assert receive_events(route) == []
    assert len(receive_events(route, wait=15, limit=1)) == 1
    status, answer = sandbox.control("GET", CONTROL_PATH)
    assert answer["recent"][-1] == {"eventName": "ModifyInstanceMetadataDefaults", "account": ACCOUNT,
                                    "region": "us-east-1", "errorCode": None}
    status, answer = sandbox.control("DELETE", CONTROL_PATH)
    assert status == 200 and answer["rules"]["trail_required"] is True and answer["delay"] == 0
    with pytest.raises(CloudTrailEventsError):
        sandbox.cloudtrail_events.configure({"delay": -1})
    sandbox.cloudtrail_events.configure({"enabled": False})
    with sandbox.cloudtrail_events.disabled("trail_required"):
        ec2.modify_instance_metadata_defaults(HttpTokens="optional")
    assert receive_events(route) == []
    assert sandbox.cloudtrail_events.stats()["errors"] == []


@pytest.fixture(autouse=True)
def no_publication_errors(sandbox):
    yield
    assert sandbox.cloudtrail_events.stats()["errors"] == []


def test_delete_message_batch_leaves_failed_out_when_nothing_failed(sandbox):
    """amazon.aws's aws_sqs_queue source, with feedback, stops at any ``Failed`` key
    (cloudtrail_events.delete_message_batch_answer): the sandbox answers as SQS does."""
    sqs = sandbox.client("sqs")
    url = sqs.create_queue(QueueName="delete-batch")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="one")
    message = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"][0]
    answer = sqs.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": "one", "ReceiptHandle": message["ReceiptHandle"]}])
    assert [entry["Id"] for entry in answer["Successful"]] == ["one"]
    assert "Failed" not in answer
    failed = sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": "bad", "ReceiptHandle": "not-a-handle"}])
    assert [entry["Id"] for entry in failed["Failed"]] == ["bad"]
