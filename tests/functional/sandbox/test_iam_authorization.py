"""tests/sandbox/iam_authorization.py: with enforcement on, a role gets exactly what its policies
allow, under the actions' IAM names, answered as AWS answers (its docstring cites the sources)."""

import datetime
import json

import botocore.exceptions
import pytest

from sandbox.iam_authorization import EC2_UNAUTHORIZED
from sandbox.imds import iam_enforcement
from sandbox.organizations import client_for
from sandbox.seed import ACCOUNT
from sandbox.seed import AMI
from sandbox.seed import make_profile

TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::{0}:root".format(ACCOUNT)}, "Action": "sts:AssumeRole"}]})


def reader(sandbox, actions):
    """A client factory for a session of a role allowed ``actions`` on every resource."""
    iam = sandbox.client("iam")
    iam.create_role(RoleName="reader", AssumeRolePolicyDocument=TRUST)
    iam.put_role_policy(RoleName="reader", PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}))
    credentials = sandbox.client("sts").assume_role(RoleArn="arn:aws:iam::{0}:role/reader".format(ACCOUNT),
                                                    RoleSessionName="test")["Credentials"]
    keys = {"access_key": credentials["AccessKeyId"], "secret_key": credentials["SecretAccessKey"],
            "session_token": credentials["SessionToken"]}
    return lambda service: client_for(sandbox, keys, service)


def refused(call, **kwargs):
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call(**kwargs)
    return caught.value.response


def test_ec2_refuses_what_the_policies_do_not_allow_with_unauthorized_operation(sandbox):
    client = reader(sandbox, ["ec2:DescribeInstances"])
    with iam_enforcement(sandbox):
        ec2 = client("ec2")
        assert ec2.describe_instances()["Reservations"] == []
        for call, kwargs in ((ec2.describe_launch_template_versions, {"Versions": ["$Default"]}),
                             (ec2.describe_iam_instance_profile_associations, {})):
            response = refused(call, **kwargs)
            assert response["Error"] == {"Code": "UnauthorizedOperation", "Message": EC2_UNAUTHORIZED}
            assert response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_the_calls_the_sandbox_answers_itself_are_checked_too(sandbox):
    client = reader(sandbox, ["ec2:GetInstanceMetadataDefaults"])
    with iam_enforcement(sandbox):
        ec2 = client("ec2")
        assert "AccountLevel" in ec2.get_instance_metadata_defaults()
        response = refused(ec2.modify_instance_metadata_defaults, HttpTokens="required")
        assert response["Error"]["Code"] == "UnauthorizedOperation"
    assert sandbox.client("ec2").get_instance_metadata_defaults()["AccountLevel"].get("HttpTokens") != "required"


def test_cloudwatch_actions_go_by_their_iam_name(sandbox):
    client = reader(sandbox, ["cloudwatch:GetMetricData"])
    with iam_enforcement(sandbox):
        cloudwatch = client("cloudwatch")
        now = datetime.datetime.now(datetime.timezone.utc)
        cloudwatch.get_metric_data(StartTime=now.replace(year=now.year - 1), EndTime=now, MetricDataQueries=[{
            "Id": "m", "MetricStat": {"Metric": {"Namespace": "AWS/EC2", "MetricName": "MetadataNoToken"},
                                      "Period": 3600, "Stat": "Sum"}}])
        response = refused(cloudwatch.list_metrics)
        assert response["Error"]["Code"] == "AccessDenied"
        assert "cloudwatch:ListMetrics" in response["Error"]["Message"]


def test_without_enforcement_nothing_is_checked(sandbox):
    client = reader(sandbox, ["ec2:DescribeInstances"])
    assert client("ec2").describe_iam_instance_profile_associations()["IamInstanceProfileAssociations"] == []


def test_a_role_that_trusts_its_account_lets_in_who_may_assume_it(sandbox):
    """Principal arn:aws:iam::<account>:root: any identity of the account whose own policies allow
    sts:AssumeRole; a session of a role named as principal, too; nobody else."""
    iam = sandbox.client("iam")
    for name, principal in (("trusts-account", "arn:aws:iam::{0}:root".format(ACCOUNT)),
                            ("trusts-reader", "arn:aws:iam::{0}:role/reader".format(ACCOUNT)),
                            ("trusts-other", "arn:aws:iam::210987654321:root")):
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}]}))
    client = reader(sandbox, ["sts:AssumeRole"])
    with iam_enforcement(sandbox):
        assume = sandbox.client("sts").assume_role  # the sandbox's admin: its policy allows everything
        assert assume(RoleArn="arn:aws:iam::{0}:role/trusts-account".format(ACCOUNT), RoleSessionName="admin")
        response = refused(assume, RoleArn="arn:aws:iam::{0}:role/trusts-other".format(ACCOUNT),
                           RoleSessionName="admin")
        assert response["Error"]["Code"] == "AccessDenied"
        session = client("sts")  # a session of reader, allowed sts:AssumeRole
        assert session.assume_role(RoleArn="arn:aws:iam::{0}:role/trusts-reader".format(ACCOUNT),
                                   RoleSessionName="chained")
        assert session.assume_role(RoleArn="arn:aws:iam::{0}:role/trusts-account".format(ACCOUNT),
                                   RoleSessionName="chained")
    # reader's session without sts:AssumeRole in its policy: the account's trust is not enough.
    iam.put_role_policy(RoleName="reader", PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:DescribeInstances",
                                                "Resource": "*"}]}))
    with iam_enforcement(sandbox):
        response = refused(client("sts").assume_role, RoleArn="arn:aws:iam::{0}:role/trusts-account".format(ACCOUNT),
                           RoleSessionName="chained")
        assert response["Error"]["Code"] == "AccessDenied"


def test_principal_matches_reads_accounts_and_roles_as_iam_does():
    from sandbox.iam_authorization import principal_matches

    user = "arn:aws:iam::123456789012:user/ops"
    session = "arn:aws:sts::123456789012:assumed-role/audit/nightly"
    assert principal_matches("arn:aws:iam::123456789012:root", user)
    assert principal_matches(["123456789012"], session)
    assert principal_matches("arn:aws:iam::123456789012:role/audit", session)
    assert principal_matches("arn:aws:iam::123456789012:role/team/audit", session)
    assert not principal_matches("arn:aws:iam::123456789012:role/other", session)
    assert not principal_matches("arn:aws:iam::210987654321:root", user)
    assert not principal_matches("arn:aws:iam::210987654321:role/audit", session)
    assert not principal_matches("arn:aws:iam::123456789012:user/other", user)


def test_giving_a_role_to_ec2_needs_pass_role_on_that_role(sandbox, instant_transitions):  # pylint: disable=unused-argument
    make_profile(sandbox, "web", settled=True)
    make_profile(sandbox, "admin", settled=True)
    instance_id = sandbox.client("ec2").run_instances(ImageId=AMI, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    client = reader(sandbox, ["ec2:AssociateIamInstanceProfile", "ec2:RunInstances", "iam:AddRoleToInstanceProfile",
                              "iam:CreateInstanceProfile"])
    iam = sandbox.client("iam")
    iam.put_role_policy(RoleName="reader", PolicyName="pass", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:PassRole",
                                                "Resource": "arn:aws:iam::{0}:role/web".format(ACCOUNT)}]}))
    with iam_enforcement(sandbox):
        ec2 = client("ec2")
        response = refused(ec2.associate_iam_instance_profile, InstanceId=instance_id,
                           IamInstanceProfile={"Name": "admin"})
        assert response["Error"] == {"Code": "UnauthorizedOperation", "Message": EC2_UNAUTHORIZED}
        response = refused(ec2.run_instances, ImageId=AMI, MinCount=1, MaxCount=1,
                           IamInstanceProfile={"Arn": "arn:aws:iam::{0}:instance-profile/admin".format(ACCOUNT)})
        assert response["Error"]["Code"] == "UnauthorizedOperation"
        ec2.associate_iam_instance_profile(InstanceId=instance_id, IamInstanceProfile={"Name": "web"})
        session_iam = client("iam")
        session_iam.create_instance_profile(InstanceProfileName="spare")
        response = refused(session_iam.add_role_to_instance_profile, InstanceProfileName="spare", RoleName="admin")
        assert response["Error"]["Code"] == "AccessDenied" and "iam:PassRole" in response["Error"]["Message"]
        session_iam.add_role_to_instance_profile(InstanceProfileName="spare", RoleName="web")
    assert len(sandbox.client("ec2").describe_instances()["Reservations"]) == 1  # the refused launch made nothing
