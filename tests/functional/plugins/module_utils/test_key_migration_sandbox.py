"""key_migration against the sandbox's IAM: the plan that moves hosts off their keys reads each owner's
permissions (its own and its groups' managed and inline policies, its boundary) once, gives each owner's
hosts one role with those permissions, stages the hosts, and skips (saying why) the hosts it cannot
migrate safely. Never a whole key id in the plan."""

import json

import pytest

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.credential_chain import describe_key
from ansible_collections.keyless.aws.plugins.module_utils.key_migration import keys_and_plan

READ = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
QUEUE = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}]}


def host_result(instance_id, keys, service_key=None):
    """A credential_sources_info result as the module returns it (keys described, a service using one)."""
    described = [describe_key(key) for key in keys]
    for entry in described:
        entry["places"] = [{"file": "/home/app/.aws/credentials", "line": 2}]
    services = []
    if service_key:
        services.append({"unit": "report.service", "user": "app", "method": "env", "key": describe_key(service_key),
                         "static_key": True, "uses_instance_role": False})
    return {"instance_id": instance_id, "keys": described, "programs": [], "users": [], "services": services}


@pytest.fixture
def owners(sandbox):
    iam = sandbox.client("iam")
    boundary = iam.create_policy(PolicyName="app-boundary", PolicyDocument=json.dumps(READ))["Policy"]["Arn"]
    managed = iam.create_policy(PolicyName="reports-read", PolicyDocument=json.dumps(READ))["Policy"]["Arn"]
    iam.create_user(UserName="report-writer", PermissionsBoundary=boundary)
    iam.attach_user_policy(UserName="report-writer", PolicyArn=managed)
    iam.put_user_policy(UserName="report-writer", PolicyName="queue", PolicyDocument=json.dumps(QUEUE))
    iam.create_group(GroupName="ops")
    iam.add_user_to_group(GroupName="ops", UserName="report-writer")
    ops = iam.create_policy(PolicyName="ops-read", PolicyDocument=json.dumps(READ))["Policy"]["Arn"]
    iam.attach_group_policy(GroupName="ops", PolicyArn=ops)
    iam.put_group_policy(GroupName="ops", PolicyName="read", PolicyDocument=json.dumps(READ))
    iam.create_user(UserName="billing")
    keys = {user: iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
            for user in ("report-writer", "billing")}
    return iam, keys, boundary, [managed, ops]


def test_the_plan_gives_each_owner_one_role_with_its_permissions_and_stages_the_hosts(owners):
    iam, keys, boundary, managed = owners
    shared = keys["report-writer"]
    foreign = "AKIA" + "Q" * 16  # a key of no user of this account
    found_on = {"web-1": host_result("i-0000000000000001", [shared], service_key=shared),
                "web-2": host_result("i-0000000000000002", [shared]),
                "batch": host_result("i-0000000000000003", [keys["billing"], shared]),
                "old": host_result("i-0000000000000004", [foreign]),
                "clean": host_result("i-0000000000000005", []),
                "lost": host_result(None, [keys["billing"]])}
    result = keys_and_plan(iam, {"found_on": found_on, "canary_percent": 50})
    plan = result["plan"]
    role = next(r for r in plan["roles"] if r["role_name"] == "keyless-report-writer")
    assert role["managed_policies"] == sorted(managed)
    assert role["inline_policies"] == {"user-queue": QUEUE, "group-ops-read": READ}
    assert role["permissions_boundary"] == boundary and role["named"] is False
    # Two hosts migrate (web-1, web-2): the first half are canaries, in host name order.
    assert plan["canaries"] == ["web-1"] and plan["rest"] == ["web-2"]
    assert role["canary_instance_ids"] == ["i-0000000000000001"] and role["rest_instance_ids"] == ["i-0000000000000002"]
    reasons = {entry["host"]: entry["reason"] for entry in plan["skipped"]}
    assert "users billing and report-writer" in reasons["batch"] and "role_name" in reasons["batch"]
    assert "belong to no user of this account" in reasons["old"] and "...QQQQ" in reasons["old"]
    assert reasons["clean"] == "no static key found"
    assert "instance_id" in reasons["lost"]
    key = next(k for k in plan["keys"] if k["user"] == "report-writer")
    assert key["hosts"] == ["batch", "web-1", "web-2"] and key["role_name"] == ["keyless-report-writer"]
    assert [(use["host"], use["kind"], use["unit"], use["label"]) for use in key["used_by"]] == [
        ("web-1", "service", "report.service", "web-1: service report.service")]
    assert key["owner_permissions"]["groups"] == ["ops"] and key["owner_permissions"]["permissions_boundary"] == boundary
    assert result["unmatched_fingerprints"] == [describe_key(foreign)["fingerprint"]]
    text = json.dumps(result, default=str)
    for key_id in list(keys.values()) + [foreign]:
        assert key_id not in text


def test_a_named_role_takes_every_host_and_an_owner_too_big_for_one_role_is_refused(owners):
    iam, keys, _boundary, _managed = owners
    found_on = {"batch": host_result("i-0000000000000003", [keys["billing"], keys["report-writer"]])}
    named = keys_and_plan(iam, {"found_on": found_on, "role_name": "legacy-apps", "canary_percent": 0})["plan"]
    assert named["rest"] == ["batch"] and named["canaries"] == []
    assert named["roles"] == [{"role_name": "legacy-apps", "owner": None, "named": True, "canary_instance_ids": [],
                               "rest_instance_ids": ["i-0000000000000003"]}]
    for number in range(10):  # with its group's, eleven managed policies: more than a role takes
        arn = iam.create_policy(PolicyName="p{0}".format(number), PolicyDocument=json.dumps(READ))["Policy"]["Arn"]
        iam.attach_group_policy(GroupName="ops", PolicyArn=arn) if number < 8 else iam.attach_user_policy(
            UserName="report-writer", PolicyArn=arn)
    found_on = {"web-1": host_result("i-0000000000000001", [keys["report-writer"]])}
    plan = keys_and_plan(iam, {"found_on": found_on, "canary_percent": 10})["plan"]
    assert plan["canaries"] == [] and plan["roles"] == []
    assert "12 managed policies" in plan["skipped"][0]["reason"] and "PoliciesPerRole" in plan["skipped"][0]["reason"]


@pytest.mark.parametrize("values, param", [
    ({"found_on": ["web-1"]}, "found_on"),
    ({"found_on": {"web-1": "yes"}}, "found_on"),
    ({"found_on": {}, "canary_percent": 150}, "canary_percent"),
    ({"found_on": {}, "role_name": "no spaces"}, "role_name"),
])
def test_bad_input_names_its_parameter_before_any_call(values, param):
    with pytest.raises(KeylessError) as caught:
        keys_and_plan(None, values)  # no client: a call would fail otherwise
    assert caught.value.param == param
