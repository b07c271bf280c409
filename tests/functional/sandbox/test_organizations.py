"""Many accounts in the sandbox (tests/sandbox/organizations.py): an organization with member
accounts, sessions of their roles acting in them alone, and STS refusing, with its exact error,
what AWS refuses and moto lets through."""

import json

import botocore.config
import botocore.exceptions
import pytest

from sandbox.organizations import DEFAULT_ROLE
from sandbox.organizations import DURATION_MESSAGE
from sandbox.organizations import MANAGEMENT_ACCOUNT
from sandbox.organizations import RULE_NAMES
from sandbox.organizations import OrganizationsError
from sandbox.organizations import access_denied_message
from sandbox.organizations import account_status
from sandbox.organizations import client_for
from sandbox.organizations import credentials_for
from sandbox.organizations import describe_organization
from sandbox.organizations import env_for
from sandbox.organizations import role_arn
from sandbox.organizations import seed_organization
from sandbox.organizations import set_account_status
from sandbox.organizations import trust_verdict
from sandbox.seed import AMI

NO_RETRIES = botocore.config.Config(retries={"total_max_attempts": 1})
ACCOUNTS = [{"name": "dev"}, {"name": "web", "ou": "prod"}, {"name": "old", "suspended": True}]
EXTERNAL_ID = "keyless-external-7f3a"
ADMINISTRATOR_ACCESS = "arn:aws:iam::aws:policy/AdministratorAccess"


def error_of(call, *args, **kwargs):
    """(code, message, HTTP status) of a call that must fail."""
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call(*args, **kwargs)
    error = raised.value.response
    return error["Error"]["Code"], error["Error"]["Message"], error["ResponseMetadata"]["HTTPStatusCode"]


def me(sandbox):
    """The ARN STS says the sandbox's own key is (the caller in its refusals)."""
    return sandbox.client("sts").get_caller_identity()["Arn"]


def denied(caller_arn, arn):
    return ("AccessDenied", access_denied_message(caller_arn, arn), 403)


def listed(pages, key):
    return [item for page in pages for item in page[key]]


@pytest.fixture
def org(sandbox):
    return seed_organization(sandbox, ACCOUNTS)


@pytest.fixture
def organizations(sandbox):
    return sandbox.client("organizations", config=NO_RETRIES)


# ---- the organization ---------------------------------------------------------------------------


def test_list_accounts_shows_the_management_account_and_every_member_with_its_status(sandbox, org, organizations):
    ids = org["ids"]
    assert len(set(ids.values())) == 3 and MANAGEMENT_ACCOUNT not in ids.values()
    accounts = listed(organizations.get_paginator("list_accounts").paginate(), "Accounts")
    assert dict((a["Id"], (a["Status"], a["State"])) for a in accounts) == {
        MANAGEMENT_ACCOUNT: ("ACTIVE", "ACTIVE"), ids["dev"]: ("ACTIVE", "ACTIVE"),
        ids["web"]: ("ACTIVE", "ACTIVE"), ids["old"]: ("SUSPENDED", "SUSPENDED")}
    assert dict((a["Id"], a["Name"]) for a in accounts if a["Id"] != MANAGEMENT_ACCOUNT) == {
        ids["dev"]: "dev", ids["web"]: "web", ids["old"]: "old"}
    assert organizations.describe_organization()["Organization"]["MasterAccountId"] == MANAGEMENT_ACCOUNT
    assert [(a["name"], a["status"]) for a in org["accounts"]] == [("dev", "ACTIVE"), ("web", "ACTIVE"),
                                                                   ("old", "SUSPENDED")]
    # PENDING_CLOSURE, which moto cannot reach, on moto's model
    set_account_status(sandbox, ids["dev"], "PENDING_CLOSURE")
    described = organizations.describe_account(AccountId=ids["dev"])["Account"]
    assert (described["Status"], described["State"]) == ("PENDING_CLOSURE", "PENDING_CLOSURE")
    assert account_status(sandbox, ids["dev"]) == "PENDING_CLOSURE"
    with pytest.raises(OrganizationsError):
        set_account_status(sandbox, MANAGEMENT_ACCOUNT, "SUSPENDED")
    with pytest.raises(OrganizationsError):
        set_account_status(sandbox, ids["web"], "CLOSED")


def test_the_ou_holds_its_account_and_nested_ous_are_made_on_their_path(sandbox, org, organizations):
    ids, root, prod = org["ids"], org["root_id"], org["ous"]["prod"]
    in_prod = listed(organizations.get_paginator("list_accounts_for_parent").paginate(ParentId=prod), "Accounts")
    assert [a["Id"] for a in in_prod] == [ids["web"]]
    assert [c["Id"] for c in organizations.list_children(ParentId=root, ChildType="ORGANIZATIONAL_UNIT")[
        "Children"]] == [prod]
    assert [c["Id"] for c in organizations.list_children(ParentId=prod, ChildType="ACCOUNT")["Children"]] == [
        ids["web"]]
    assert sorted(c["Id"] for c in organizations.list_children(ParentId=root, ChildType="ACCOUNT")["Children"]) == \
        sorted([MANAGEMENT_ACCOUNT, ids["dev"], ids["old"]])
    assert organizations.list_parents(ChildId=ids["web"])["Parents"] == [{"Id": prod, "Type": "ORGANIZATIONAL_UNIT"}]
    # a second seed joins the same organization; "a/b" nests, reusing the OU "prod"
    more = seed_organization(sandbox, [{"name": "api", "ou": "prod/api"}, {"name": "ml", "ou": "prod"}])
    assert more["organization_id"] == org["organization_id"] and more["ous"]["prod"] == prod
    api_ou = more["ous"]["prod/api"]
    assert organizations.list_parents(ChildId=more["ids"]["api"])["Parents"] == [
        {"Id": api_ou, "Type": "ORGANIZATIONAL_UNIT"}]
    assert organizations.list_parents(ChildId=api_ou)["Parents"] == [{"Id": prod, "Type": "ORGANIZATIONAL_UNIT"}]
    assert sorted(a["Id"] for a in organizations.list_accounts_for_parent(ParentId=prod)["Accounts"]) == sorted(
        [ids["web"], more["ids"]["ml"]])
    described = describe_organization(sandbox)
    assert described["ous"] == {"prod": prod, "prod/api": api_ou}
    assert dict((a["name"], a["ou"]) for a in described["accounts"]) == {
        "master": None, "dev": None, "web": "prod", "old": None, "api": "prod/api", "ml": "prod"}


def test_a_session_of_each_active_member_acts_in_that_account_alone(sandbox, org):
    ids = org["ids"]
    sessions = dict((name, credentials_for(sandbox, ids[name], session_name="fleet-" + name))
                    for name in ("dev", "web"))
    launched = {}
    for count, name in enumerate(("dev", "web"), start=1):
        session = sessions[name]
        identity = client_for(sandbox, session, "sts").get_caller_identity()
        assert identity["Account"] == ids[name] == session["account_id"]
        assert identity["Arn"] == session["arn"] == "arn:aws:sts::{0}:assumed-role/{1}/fleet-{2}".format(
            ids[name], DEFAULT_ROLE, name)
        assert session["access_key"].startswith("ASIA") and session["expiration"].tzinfo is not None
        reservation = client_for(sandbox, session, "ec2").run_instances(
            ImageId=AMI, InstanceType="t3.micro", MinCount=count, MaxCount=count)
        assert reservation["OwnerId"] == ids[name]
        launched[name] = sorted(i["InstanceId"] for i in reservation["Instances"])
        iam = client_for(sandbox, session, "iam")
        iam.create_role(RoleName="app-" + name, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                       "Action": "sts:AssumeRole"}]}))
        # the role Organizations made: trusting the management account, with AdministratorAccess
        access_role = iam.get_role(RoleName=DEFAULT_ROLE)["Role"]
        assert access_role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
            "AWS": "arn:aws:iam::{0}:root".format(MANAGEMENT_ACCOUNT)}
        assert [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=DEFAULT_ROLE)[
            "AttachedPolicies"]] == [ADMINISTRATOR_ACCESS]

    def instances(ec2):
        return sorted(i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"])

    def roles(iam):
        return sorted(r["RoleName"] for r in iam.list_roles()["Roles"])

    for name in ("dev", "web"):
        assert instances(client_for(sandbox, sessions[name], "ec2")) == launched[name]
        assert roles(client_for(sandbox, sessions[name], "iam")) == sorted([DEFAULT_ROLE, "app-" + name])
    assert instances(sandbox.client("ec2")) == []
    assert roles(sandbox.client("iam")) == []
    assert error_of(sandbox.client("iam").get_role, RoleName="app-dev")[0] == "NoSuchEntity"
    env = env_for(sandbox, sessions["web"])
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SESSION_TOKEN"]) == (sessions["web"]["access_key"],
                                                                    sessions["web"]["session_token"])
    assert env["AWS_ENDPOINT_URL"] == sandbox.url


# ---- what STS refuses -----------------------------------------------------------------------------


def test_a_missing_or_wrong_external_id_is_refused_with_stss_exact_error(sandbox):
    org = seed_organization(sandbox, [{"name": "dev"}, {"name": "open", "external_id": None}], external_id=EXTERNAL_ID)
    dev, caller = org["ids"]["dev"], me(sandbox)
    assert org["accounts"][0]["external_id"] == EXTERNAL_ID and org["accounts"][1]["external_id"] is None
    since = len(sandbox.app.log)
    assert error_of(credentials_for, sandbox, dev) == denied(caller, role_arn(dev))
    wrong = error_of(credentials_for, sandbox, dev, external_id="keyless-external-wrong")
    assert wrong == denied(caller, role_arn(dev))
    assert credentials_for(sandbox, dev, external_id=EXTERNAL_ID)["account_id"] == dev
    calls = sandbox.calls("sts", "AssumeRole", since=since)
    assert [(c["status"], c.get("injected")) for c in calls] == [
        (403, "rule:assume_role_trust"), (403, "rule:assume_role_trust"), (200, None)]
    # the account whose entry asked none; an external ID it does not ask is accepted (aws-sdk-js 3869)
    opened = org["ids"]["open"]
    assert credentials_for(sandbox, opened)["account_id"] == opened
    assert credentials_for(sandbox, opened, external_id="anything")["account_id"] == opened
    # moto's plain AssumeRole with the rule off: any external ID, or none
    with sandbox.organizations.disabled("assume_role_trust"):
        assert credentials_for(sandbox, dev, external_id="keyless-external-wrong")["account_id"] == dev
    assert sandbox.organizations.enabled("assume_role_trust")


def test_the_suspended_and_the_pending_closure_accounts_are_refused(sandbox, org):
    ids, caller = org["ids"], me(sandbox)
    assert error_of(credentials_for, sandbox, ids["old"]) == denied(caller, role_arn(ids["old"]))
    assert sandbox.calls("sts", "AssumeRole")[-1]["injected"] == "rule:assume_role_closed_account"
    set_account_status(sandbox, ids["web"], "PENDING_CLOSURE")
    assert error_of(credentials_for, sandbox, ids["web"]) == denied(caller, role_arn(ids["web"]))
    set_account_status(sandbox, ids["web"], "ACTIVE")  # reopened
    assert credentials_for(sandbox, ids["web"])["account_id"] == ids["web"]
    with sandbox.organizations.disabled("assume_role_closed_account"):
        assert credentials_for(sandbox, ids["old"])["account_id"] == ids["old"]


def test_the_trust_policy_decides_who_may_assume_the_role(sandbox, org):
    dev, web = org["ids"]["dev"], org["ids"]["web"]
    caller = me(sandbox)
    dev_iam = client_for(sandbox, credentials_for(sandbox, dev), "iam")

    def role(name, *statements):
        dev_iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": list(statements)}))
        return name

    management = {"AWS": "arn:aws:iam::{0}:root".format(MANAGEMENT_ACCOUNT)}
    allow = {"Effect": "Allow", "Principal": management, "Action": "sts:AssumeRole"}
    other = role("other-account", dict(allow, Principal={"AWS": "arn:aws:iam::444455556666:root"}))
    ec2_only = role("ec2-only", dict(allow, Principal={"Service": "ec2.amazonaws.com"}))
    denying = role("denying", allow, {"Effect": "Deny", "Principal": {"AWS": MANAGEMENT_ACCOUNT}, "Action": "sts:*"})
    sessions = role("ci-sessions", dict(allow, Condition={"StringLike": {"sts:RoleSessionName": "ci-*"}}))
    in_org = role("in-org", dict(allow, Principal={"AWS": "*"},
                                 Condition={"StringEquals": {"aws:PrincipalOrgID": org["organization_id"]}}))
    web_only = role("web-sessions", dict(allow, Principal={"AWS": role_arn(web)}))
    for name in (other, ec2_only, denying, web_only):
        assert error_of(credentials_for, sandbox, dev, name) == denied(caller, role_arn(dev, name))
    assert error_of(credentials_for, sandbox, dev, sessions, "dev-1") == denied(caller, role_arn(dev, sessions))
    assert credentials_for(sandbox, dev, sessions, "ci-1")["account_id"] == dev
    assert credentials_for(sandbox, dev, in_org)["account_id"] == dev
    # role chaining: a session of web's access role is the principal the role names
    web_session = credentials_for(sandbox, web)
    chained = credentials_for(sandbox, dev, web_only, "chained", source=web_session)
    assert chained["arn"] == "arn:aws:sts::{0}:assumed-role/web-sessions/chained".format(dev)
    assert client_for(sandbox, chained, "sts").get_caller_identity()["Account"] == dev
    # and a session is refused what its role's trust does not name, with the session as the caller
    assert error_of(credentials_for, sandbox, dev, other, source=web_session) == denied(
        web_session["arn"], role_arn(dev, other))


def test_a_role_that_does_not_exist_is_refused_in_the_organization_only(sandbox, org):
    dev, caller = org["ids"]["dev"], me(sandbox)
    assert error_of(credentials_for, sandbox, dev, "NoSuchRole") == denied(caller, role_arn(dev, "NoSuchRole"))
    assert sandbox.calls("sts", "AssumeRole")[-1]["injected"] == "rule:assume_role_unknown_role"
    assert error_of(credentials_for, sandbox, MANAGEMENT_ACCOUNT, "NoSuchRole") == denied(
        caller, role_arn(MANAGEMENT_ACCOUNT, "NoSuchRole"))
    # moto's door into an account of no organization (its first role is made through it) stays open
    outside = credentials_for(sandbox, "444455556666", "bootstrap")
    assert client_for(sandbox, outside, "sts").get_caller_identity()["Account"] == "444455556666"


def test_a_duration_above_the_roles_max_session_duration_is_a_validation_error(sandbox, org):
    dev = org["ids"]["dev"]
    assert error_of(credentials_for, sandbox, dev, duration_seconds=3601) == ("ValidationError", DURATION_MESSAGE, 400)
    assert sandbox.calls("sts", "AssumeRole")[-1]["injected"] == "rule:assume_role_duration"
    assert credentials_for(sandbox, dev, duration_seconds=3600)["account_id"] == dev
    client_for(sandbox, credentials_for(sandbox, dev), "iam").update_role(RoleName=DEFAULT_ROLE,
                                                                          MaxSessionDuration=7200)
    assert credentials_for(sandbox, dev, duration_seconds=7200)["account_id"] == dev


def test_requests_the_sandbox_makes_for_itself_are_never_refused(sandbox, org):
    sts = sandbox.client("sts", config=NO_RETRIES)
    sts.meta.events.register("before-sign", lambda request, **_kw: request.headers.__setitem__(
        "X-Keyless-Sandbox-Origin", "imds"))
    old = org["ids"]["old"]
    assert sts.assume_role(RoleArn=role_arn(old), RoleSessionName="service")["AssumedRoleUser"]["Arn"].startswith(
        "arn:aws:sts::{0}:".format(old))


# ---- switches, control API, reset ---------------------------------------------------------------


def test_the_control_api_seeds_and_switches_for_another_process(sandbox):
    status, answer = sandbox.control("GET", "/_sandbox/organizations")
    assert status == 200 and answer == {"rules": dict((n, True) for n in RULE_NAMES), "organization": None}
    status, answer = sandbox.control("POST", "/_sandbox/organizations", {"seed": {"accounts": [
        "dev", {"name": "web", "ou": "prod", "status": "PENDING_CLOSURE"}], "external_id": EXTERNAL_ID}})
    assert status == 200, answer
    ids = answer["seeded"]["ids"]
    assert dict((a["id"], a["status"]) for a in answer["organization"]["accounts"]) == {
        MANAGEMENT_ACCOUNT: "ACTIVE", ids["dev"]: "ACTIVE", ids["web"]: "PENDING_CLOSURE"}
    assert credentials_for(sandbox, ids["dev"], external_id=EXTERNAL_ID)["account_id"] == ids["dev"]
    assert error_of(credentials_for, sandbox, ids["dev"])[0] == "AccessDenied"
    status, answer = sandbox.control("POST", "/_sandbox/organizations", {"disable": ["assume_role_trust"]})
    assert status == 200 and answer["rules"]["assume_role_trust"] is False
    assert credentials_for(sandbox, ids["dev"])["account_id"] == ids["dev"]
    for bad in ({"seed": {"accounts": []}}, {"seed": {"accounts": ["a", "a"]}}, {"disable": ["no_such_rule"]},
                {"seed": {"accounts": [{"name": "x", "colour": "red"}]}}, {"enable": ["assume_role_trust"], "x": 1}):
        status, answer = sandbox.control("POST", "/_sandbox/organizations", bad)
        assert status == 400 and answer["error"], bad
    assert len(describe_organization(sandbox)["accounts"]) == 3  # nothing seeded by a bad request
    status, answer = sandbox.control("DELETE", "/_sandbox/organizations")
    assert status == 200 and all(answer["rules"].values())


def test_a_reset_forgets_the_organization_its_members_and_the_switches(sandbox, org):
    from moto.organizations.models import organizations_backends

    sandbox.organizations.disable("assume_role_trust", "assume_role_duration")
    assert organizations_backends.master_accounts
    sandbox.reset()
    assert organizations_backends.master_accounts == {}
    assert describe_organization(sandbox) is None
    assert all(sandbox.organizations.enabled(name) for name in RULE_NAMES)
    assert error_of(sandbox.client("organizations").describe_organization)[0] == "AWSOrganizationsNotInUseException"
    with pytest.raises(OrganizationsError):
        sandbox.organizations.disable("no_such_rule")


BAD_ACCOUNT_LISTS = [[], "dev", [{"name": ""}], [{"name": "a"}, "a"], [{"name": "a", "ou": "x//y"}],
                     [{"name": "a", "status": "CLOSED"}], [{"name": "a", "suspended": True, "status": "ACTIVE"}],
                     [{"nom": "a"}]]


@pytest.mark.parametrize("accounts", BAD_ACCOUNT_LISTS)
def test_a_bad_account_list_is_refused_before_anything_is_made(sandbox, accounts):
    with pytest.raises(OrganizationsError):
        seed_organization(sandbox, accounts)
    assert describe_organization(sandbox) is None and sandbox.app.log == []


# ---- the trust evaluation itself ----------------------------------------------------------------

CALLER = {"arn": "arn:aws:sts::111122223333:assumed-role/ci/run-1", "account": "111122223333",
          "type": "AssumedRole", "principal_arn": "arn:aws:iam::111122223333:role/ci"}


def policy(condition=None, effect="Allow", principal=None, **extra):
    statement = dict({"Effect": effect, "Principal": principal or {"AWS": "111122223333"}, "Action": "sts:AssumeRole"},
                     **extra)
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


@pytest.mark.parametrize("document, context, verdict", [
    (policy(), {}, "allow"),
    (policy(principal={"AWS": ["arn:aws:iam::999999999999:root", "arn:aws:iam::111122223333:role/ci"]}), {}, "allow"),
    (policy(principal={"AWS": "arn:aws:iam::111122223333:role/other"}), {}, "implicit"),
    (policy(principal={"AWS": "arn:aws:sts::111122223333:assumed-role/ci/run-1"}), {}, "allow"),
    (policy(principal="*"), {}, "allow"),
    (policy(effect="Deny"), {}, "deny"),
    (policy({"StringEquals": {"sts:ExternalId": "e1"}}), {"sts:externalid": "e1"}, "allow"),
    (policy({"StringEquals": {"STS:EXTERNALID": ["e0", "e1"]}}), {"sts:externalid": "e1"}, "allow"),
    (policy({"StringEquals": {"sts:ExternalId": "e1"}}), {}, "implicit"),
    (policy({"StringEquals": {"sts:ExternalId": "e1"}}), {"sts:externalid": "E1"}, "implicit"),
    (policy({"StringEqualsIgnoreCase": {"sts:ExternalId": "e1"}}), {"sts:externalid": "E1"}, "allow"),
    (policy({"StringNotEquals": {"sts:ExternalId": "e1"}}), {}, "allow"),  # negated, key absent: true
    (policy({"StringEqualsIfExists": {"sts:ExternalId": "e1"}}), {}, "allow"),
    (policy({"StringEqualsIfExists": {"sts:ExternalId": "e1"}}), {"sts:externalid": "e2"}, "implicit"),
    (policy({"Null": {"sts:ExternalId": "false"}}), {}, "implicit"),
    (policy({"Null": {"sts:ExternalId": "false"}}), {"sts:externalid": "x"}, "allow"),
    (policy({"StringLike": {"sts:RoleSessionName": "run-?"}}), {"sts:rolesessionname": "run-1"}, "allow"),
    # an operator the sandbox does not evaluate, on a key the request has: no Allow, and a Deny
    (policy({"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}), {"aws:multifactorauthage": "10"}, "implicit"),
    (policy({"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}, effect="Deny"), {"aws:multifactorauthage": "10"},
     "deny"),
    # ... on a key the request lacks: false, as IAM decides it (true when negated)
    (policy({"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}, effect="Deny"), {}, "implicit"),
    (policy({"NumericNotEquals": {"aws:MultiFactorAuthAge": "3600"}}), {}, "allow"),
    (policy(principal={"Service": "ec2.amazonaws.com"}), {}, "implicit"),
    (policy(Action="sts:TagSession"), {}, "implicit"),
    (policy(Action=["sts:TagSession", "STS:Assume*"]), {}, "allow"),
    (json.dumps(policy()), {}, "allow"),
    ("not json", {}, "implicit"),
])
def test_trust_verdict(document, context, verdict):
    assert trust_verdict(document, CALLER, context) == verdict
