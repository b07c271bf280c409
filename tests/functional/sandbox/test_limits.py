"""The sandbox's AWS-like mode (tests/sandbox/limits.py): EC2's token buckets per action class,
account and region, answered as EC2 answers (503 RequestLimitExceeded) and IAM answers (400
Throttling), the latency of a call, the control API, and the mode off by default and after a reset.

Time is a moved clock wherever a bucket's refill matters (no test waits for a token); the clients
never retry (``total_max_attempts`` 1), so every throttled answer reaches the test.
"""

import threading
import urllib.request

import botocore.config
import botocore.exceptions
import pytest
from moved_clock import MovedClock

from sandbox import limits as limits_module
from sandbox.limits import DEFAULT_BUCKETS
from sandbox.limits import DEFAULT_LATENCY
from sandbox.limits import Limits
from sandbox.limits import LimitsError
from sandbox.limits import bucket_for
from sandbox.limits import resource_bucket_for

NO_RETRIES = botocore.config.Config(retries={"total_max_attempts": 1})
AMI = "ami-1e749f67"
ACCOUNT = "123456789012"
OTHER_ACCOUNT = "111111111111"
NO_LATENCY = {"ec2": 0, "iam": 0, "*": 0}
EC2_THROTTLED = ("RequestLimitExceeded", "Request limit exceeded.", 503)
IAM_THROTTLED = ("Throttling", "Rate exceeded", 400)


@pytest.fixture
def moved(sandbox):
    """The sandbox's limits on a clock that moves only when the test says so; everything as it was after."""
    limits = sandbox.limits
    clock, sleep = limits.clock, limits.sleep
    limits.clock = MovedClock()
    yield limits.clock
    limits.clock, limits.sleep = clock, sleep
    limits.reset()


def on(limits, buckets=None, **config):
    """The mode on with no latency (unless given) and these bucket figures."""
    config.setdefault("latency", NO_LATENCY)
    return limits.configure(enabled=True, buckets=buckets or {}, **config)


def outcome(call, **kwargs):
    """None when the call was admitted (whatever moto then answered), else (code, message, status)."""
    try:
        call(**kwargs)
    except botocore.exceptions.ClientError as error:
        answer = error.response
        result = (answer["Error"]["Code"], answer["Error"]["Message"], answer["ResponseMetadata"]["HTTPStatusCode"])
        return result if result[0] in ("RequestLimitExceeded", "Throttling") else None
    return None


class Sleeps(list):
    """A sleep that only records, and whether the limits' lock was held while it slept."""

    def __init__(self, limits=None):
        super().__init__()
        self.limits = limits
        self.locked = []

    def __call__(self, seconds):
        self.append(seconds)
        if self.limits is not None:
            self.locked.append(self.limits._lock.locked())  # pylint: disable=protected-access


def request(action, service="ec2", region="us-east-1", account=ACCOUNT, params=None, origin=False):
    """A request as SandboxApp.describe gives it to an interceptor."""
    environ = {"HTTP_X_MOTO_ACCOUNT_ID": account}
    if origin:
        environ["HTTP_X_KEYLESS_SANDBOX_ORIGIN"] = "imds"
    return {"service": service, "region": region, "action": action, "params": params or {}, "environ": environ}


def refused(limits, *args, **kwargs):
    """The bucket that refused the request (from its mark), or None when admitted."""
    info = request(*args, **kwargs)
    answer = limits.intercept(info)
    if answer is None:
        assert "injected" not in info
        return None
    return info["injected"].split(":", 1)[1]


@pytest.fixture
def unit():
    """A Limits of its own, on a moved clock and a recording sleep, on with no latency."""
    clock = MovedClock()
    limits = Limits(clock=clock, sleep=Sleeps())
    on(limits)
    limits.moved = clock
    return limits


# ---- the table ------------------------------------------------------------------------------------


@pytest.mark.parametrize("service, action, bucket", [
    ("ec2", "AssociateIamInstanceProfile", "associations"),
    ("ec2", "DisassociateIamInstanceProfile", "associations"),
    ("ec2", "ModifyInstanceMetadataOptions", "metadata_options"),
    ("ec2", "CreateLaunchTemplateVersion", "launch_template_versions"),
    ("ec2", "ModifyLaunchTemplate", "launch_template_versions"),
    ("ec2", "ModifyInstanceMetadataDefaults", "metadata_defaults"),
    ("ec2", "RunInstances", "run_instances"),
    ("ec2", "ReplaceIamInstanceProfileAssociation", "mutating"),
    ("ec2", "CreateLaunchTemplate", "mutating"),
    ("ec2", "CreateTags", "mutating"),
    ("ec2", "TerminateInstances", "mutating"),
    ("ec2", "DescribeInstances", "non_mutating"),
    ("ec2", "DescribeIamInstanceProfileAssociations", "non_mutating"),
    ("ec2", "GetInstanceMetadataDefaults", "non_mutating"),
    ("iam", "GetInstanceProfile", "non_mutating"),
    ("iam", "ListInstanceProfiles", "non_mutating"),
    ("iam", "CreateInstanceProfile", "mutating"),
    ("iam", "AddRoleToInstanceProfile", "mutating"),
    ("sts", "AssumeRole", None),
    ("s3", "ListBuckets", None),
])
def test_bucket_for_classifies_actions_as_the_table_does(sandbox, service, action, bucket):
    assert bucket_for(service, action) == bucket
    assert sandbox.limits.bucket_for(service, action) == bucket
    assert bucket is None or bucket in DEFAULT_BUCKETS[service]


def test_the_default_table_and_the_resource_bucket():
    assert DEFAULT_BUCKETS["ec2"] == {
        "associations": {"capacity": 100, "refill": 5},
        "metadata_options": {"capacity": 100, "refill": 5},
        "launch_template_versions": {"capacity": 100, "refill": 5},
        "metadata_defaults": {"capacity": 2, "refill": 2},
        "run_instances": {"capacity": 5, "refill": 2},
        "run_instances_resource": {"capacity": 1000, "refill": 2},
        "mutating": {"capacity": 50, "refill": 5},
        "non_mutating": {"capacity": 100, "refill": 20},
    }
    assert set(DEFAULT_BUCKETS["iam"]) == {"mutating", "non_mutating"}
    assert "sts" not in DEFAULT_BUCKETS
    assert DEFAULT_LATENCY == {"ec2": 0.02, "iam": 0.04, "*": 0.02}
    assert resource_bucket_for("ec2", "RunInstances") == "run_instances_resource"
    assert resource_bucket_for("ec2", "AssociateIamInstanceProfile") is None
    assert resource_bucket_for("iam", "RunInstances") is None


def test_the_limits_are_asked_before_every_other_interceptor(sandbox):
    assert sandbox.app.interceptors[0] == sandbox.limits.intercept
    count = len(sandbox.app.interceptors)
    assert limits_module.install(sandbox) is sandbox.limits
    assert len(sandbox.app.interceptors) == count


# ---- off by default ----------------------------------------------------------------------------


def test_off_by_default_and_after_a_reset(sandbox, moved, ec2):
    assert sandbox.limits.enabled is False
    sandbox.limits.configure(latency=NO_LATENCY, buckets={"ec2": {"non_mutating": {"capacity": 1, "refill": 0}}})
    assert [outcome(ec2.describe_instances) for _n in range(3)] == [None, None, None]
    assert sandbox.limits.stats() == {"admitted": {}, "throttled": {}}

    sandbox.limits.configure(enabled=True)
    assert [outcome(ec2.describe_instances) for _n in range(2)] == [None, EC2_THROTTLED]

    sandbox.reset()
    state = sandbox.limits.status()
    assert (state["enabled"], state["buckets"], state["latency"]) == (False, DEFAULT_BUCKETS, DEFAULT_LATENCY)
    assert state["stats"] == {"admitted": {}, "throttled": {}}
    assert [outcome(ec2.describe_instances) for _n in range(3)] == [None, None, None]


# ---- EC2: a burst, then the refusal ----------------------------------------------------------------


def test_a_burst_of_capacity_is_admitted_then_ec2_answers_503_request_limit_exceeded(sandbox, moved, ec2):
    on(sandbox.limits, {"ec2": {"non_mutating": {"capacity": 5, "refill": 1}}})
    since = len(sandbox.app.log)
    assert [outcome(ec2.describe_instances) for _n in range(5)] == [None] * 5
    assert outcome(ec2.describe_instances) == EC2_THROTTLED

    log = sandbox.calls("ec2", "DescribeInstances", since=since)
    assert [r["status"] for r in log] == [200] * 5 + [503]
    assert log[-1]["injected"] == "limits:non_mutating" and "injected" not in log[0]
    assert sandbox.limits.stats() == {"admitted": {"ec2/non_mutating": 5}, "throttled": {"ec2/non_mutating": 1}}

    moved.advance(1.0)  # one token back
    assert [outcome(ec2.describe_instances) for _n in range(2)] == [None, EC2_THROTTLED]
    moved.advance(3600)  # full again, never more than the capacity
    assert sandbox.limits.tokens("ec2", "non_mutating") == 5
    assert [outcome(ec2.describe_instances) for _n in range(6)] == [None] * 5 + [EC2_THROTTLED]


def test_the_account_form_of_the_message(sandbox, moved, ec2):
    on(sandbox.limits, {"ec2": {"non_mutating": {"capacity": 0}}}, ec2_message_form="account")
    assert outcome(ec2.describe_instances) == (
        "RequestLimitExceeded", "Request limit exceeded. Account {0} has been throttled on ec2:DescribeInstances "
        "because it exceeded its request rate limit.".format(ACCOUNT), 503)


def test_tokens_refill_continuously_up_to_the_capacity(unit):
    unit.configure(buckets={"ec2": {"metadata_defaults": {"capacity": 2, "refill": 2}}})
    action = "ModifyInstanceMetadataDefaults"
    assert [refused(unit, action) for _n in range(3)] == [None, None, "metadata_defaults"]
    unit.moved.advance(0.25)  # half a token
    assert refused(unit, action) == "metadata_defaults"
    assert unit.tokens("ec2", "metadata_defaults") == pytest.approx(0.5)
    unit.moved.advance(0.25)
    assert [refused(unit, action) for _n in range(2)] == [None, "metadata_defaults"]
    unit.moved.advance(100)
    assert [refused(unit, action) for _n in range(3)] == [None, None, "metadata_defaults"]


def test_a_refused_request_takes_no_token(unit):
    unit.configure(buckets={"ec2": {"mutating": {"capacity": 1, "refill": 1}}})
    assert [refused(unit, "CreateTags") for _n in range(2)] == [None, "mutating"]
    unit.moved.advance(0.5)
    assert refused(unit, "CreateTags") == "mutating"  # half a token, still half a token after
    unit.moved.advance(0.5)
    assert refused(unit, "CreateTags") is None


# ---- separate buckets ------------------------------------------------------------------------------


def test_each_action_class_has_its_own_bucket(unit):
    one = {"capacity": 1, "refill": 0}
    unit.configure(buckets={"ec2": dict((name, one) for name in (
        "associations", "mutating", "non_mutating", "metadata_options", "launch_template_versions"))})
    assert refused(unit, "AssociateIamInstanceProfile") is None
    assert refused(unit, "DisassociateIamInstanceProfile") == "associations"  # shares the associations bucket
    assert refused(unit, "ReplaceIamInstanceProfileAssociation") is None
    assert refused(unit, "CreateTags") == "mutating"
    assert refused(unit, "DescribeInstances") is None
    assert refused(unit, "DescribeIamInstanceProfileAssociations") == "non_mutating"
    assert refused(unit, "ModifyInstanceMetadataOptions") is None
    assert refused(unit, "CreateLaunchTemplateVersion") is None
    assert refused(unit, "ModifyLaunchTemplate") == "launch_template_versions"
    assert unit.stats()["throttled"] == {"ec2/associations": 1, "ec2/launch_template_versions": 1,
                                         "ec2/mutating": 1, "ec2/non_mutating": 1}


def test_per_action_gives_each_action_its_own_bucket_with_its_rows_figures(unit):
    unit.configure(per_action=True, buckets={"ec2": {"mutating": {"capacity": 1, "refill": 0}}})
    assert refused(unit, "ReplaceIamInstanceProfileAssociation") is None
    assert refused(unit, "CreateTags") is None
    assert refused(unit, "ReplaceIamInstanceProfileAssociation") == "mutating"
    unit.configure(per_action=False)
    assert [refused(unit, "ReplaceIamInstanceProfileAssociation"), refused(unit, "CreateTags")] == [None, "mutating"]


def test_association_calls_through_boto3_share_their_bucket_and_not_the_mutating_one(sandbox, moved, ec2):
    on(sandbox.limits, {"ec2": {"associations": {"capacity": 1, "refill": 0}}})
    assert outcome(ec2.associate_iam_instance_profile, InstanceId="i-0123456789abcdef0",
                   IamInstanceProfile={"Name": "web"}) is None  # admitted (moto then refuses it)
    assert outcome(ec2.disassociate_iam_instance_profile, AssociationId="iip-assoc-0123456789abcdef0") == EC2_THROTTLED
    assert outcome(ec2.replace_iam_instance_profile_association, AssociationId="iip-assoc-0123456789abcdef0",
                   IamInstanceProfile={"Name": "web"}) is None
    assert sandbox.calls("ec2", "DisassociateIamInstanceProfile")[-1]["injected"] == "limits:associations"


def test_buckets_are_per_region(sandbox, moved, ec2):
    on(sandbox.limits, {"ec2": {"non_mutating": {"capacity": 1, "refill": 0}}})
    ireland = sandbox.client("ec2", region_name="eu-west-1", config=NO_RETRIES)
    assert [outcome(ec2.describe_instances) for _n in range(2)] == [None, EC2_THROTTLED]
    assert [outcome(ireland.describe_instances) for _n in range(2)] == [None, EC2_THROTTLED]
    assert sandbox.limits.tokens("ec2", "non_mutating", region="eu-west-1") == 0


def test_buckets_are_per_account_an_assumed_role_in_another_account_has_its_own(sandbox, moved, ec2):
    on(sandbox.limits, {"ec2": {"non_mutating": {"capacity": 1, "refill": 0}}})
    credentials = sandbox.client("sts").assume_role(
        RoleArn="arn:aws:iam::{0}:role/fleet".format(OTHER_ACCOUNT), RoleSessionName="limits")["Credentials"]
    import boto3

    other = boto3.client("ec2", endpoint_url=sandbox.url, region_name=sandbox.REGION, config=NO_RETRIES,
                         aws_access_key_id=credentials["AccessKeyId"],
                         aws_secret_access_key=credentials["SecretAccessKey"],
                         aws_session_token=credentials["SessionToken"])
    assert [outcome(ec2.describe_instances) for _n in range(2)] == [None, EC2_THROTTLED]
    assert outcome(other.describe_instances) is None
    assert outcome(other.describe_instances) == EC2_THROTTLED
    assert sandbox.limits.tokens("ec2", "non_mutating", account=OTHER_ACCOUNT) == 0


def test_iam_buckets_are_per_account_and_global(unit):
    unit.configure(buckets={"iam": {"non_mutating": {"capacity": 1, "refill": 0}}})
    assert refused(unit, "ListRoles", service="iam") is None
    assert refused(unit, "ListRoles", service="iam", region="eu-west-1") == "non_mutating"
    assert refused(unit, "ListRoles", service="iam", account=OTHER_ACCOUNT) is None


# ---- IAM, STS --------------------------------------------------------------------------------------


def test_iam_answers_400_throttling_rate_exceeded(sandbox, moved, iam):
    on(sandbox.limits, {"iam": {"non_mutating": {"capacity": 2, "refill": 0},
                                "mutating": {"capacity": 1, "refill": 0}}})
    assert [outcome(iam.list_roles) for _n in range(3)] == [None, None, IAM_THROTTLED]
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        iam.list_instance_profiles()
    assert raised.value.response["Error"] == {"Type": "Sender", "Code": "Throttling", "Message": "Rate exceeded"}

    assert outcome(iam.create_instance_profile, InstanceProfileName="a") is None  # its own bucket
    assert outcome(iam.create_instance_profile, InstanceProfileName="b") == IAM_THROTTLED
    log = sandbox.calls("iam", "CreateInstanceProfile")
    assert [(r["status"], r.get("injected")) for r in log] == [(200, None), (400, "limits:mutating")]


def test_sts_is_never_throttled(sandbox, moved):
    on(sandbox.limits, {"ec2": dict((name, {"capacity": 0}) for name in DEFAULT_BUCKETS["ec2"]),
                        "iam": dict((name, {"capacity": 0}) for name in DEFAULT_BUCKETS["iam"])})
    sts = sandbox.client("sts", config=NO_RETRIES)
    assert [sts.get_caller_identity()["Account"] for _n in range(3)] == [ACCOUNT] * 3


# ---- RunInstances: requests and instances ----------------------------------------------------------


def test_run_instances_takes_a_request_token_and_one_token_per_instance(sandbox, moved, ec2):
    on(sandbox.limits, {"ec2": {"run_instances_resource": {"capacity": 3, "refill": 0}}})
    assert outcome(ec2.run_instances, ImageId=AMI, MinCount=2, MaxCount=2) is None
    assert outcome(ec2.run_instances, ImageId=AMI, MinCount=2, MaxCount=2) == EC2_THROTTLED
    assert sandbox.calls("ec2", "RunInstances")[-1]["injected"] == "limits:run_instances_resource"
    assert sandbox.limits.tokens("ec2", "run_instances") == 4  # the refused request took no token
    assert sandbox.limits.tokens("ec2", "run_instances_resource") == 1
    assert outcome(ec2.run_instances, ImageId=AMI, MinCount=1, MaxCount=3) is None  # MinCount fits
    assert sandbox.limits.tokens("ec2", "run_instances_resource") == 0


def test_run_instances_requests_have_a_bucket_of_five(unit):
    launch = {"MinCount": "1", "MaxCount": "1"}
    assert [refused(unit, "RunInstances", params=launch) for _n in range(6)] == [None] * 5 + ["run_instances"]
    unit.moved.advance(0.5)  # refill 2/s
    assert [refused(unit, "RunInstances", params=launch) for _n in range(2)] == [None, "run_instances"]
    assert unit.stats()["admitted"] == {"ec2/run_instances": 6, "ec2/run_instances_resource": 6}


# ---- latency -----------------------------------------------------------------------------------------


def test_latency_is_applied_to_admitted_and_throttled_calls_per_service(sandbox, moved, ec2, iam, monkeypatch):
    on(sandbox.limits, {"ec2": {"non_mutating": {"capacity": 1, "refill": 0}}}, latency={"ec2": 0.2, "iam": 0})
    slept = []
    monkeypatch.setattr(sandbox.limits, "sleep", slept.append)  # what each call slept, not the wall clock
    for expected in (None, EC2_THROTTLED):
        assert outcome(ec2.describe_instances) == expected
    assert slept == [0.2, 0.2]
    iam.list_roles()
    assert slept == [0.2, 0.2]  # iam: no latency, no sleep


def test_latency_holds_no_lock():
    limits = Limits(clock=MovedClock())
    limits.sleep = Sleeps(limits)
    limits.configure(enabled=True, latency={"ec2": 0.3, "sts": 0.1},
                     buckets={"ec2": {"non_mutating": {"capacity": 1, "refill": 0}}})
    assert [refused(limits, "DescribeInstances") for _n in range(2)] == [None, "non_mutating"]
    assert refused(limits, "GetCallerIdentity", service="sts") is None
    assert refused(limits, "ListBuckets", service="s3") is None  # every other service: "*"
    assert limits.sleep == [0.3, 0.3, 0.1, DEFAULT_LATENCY["*"]]
    assert limits.sleep.locked == [False] * 4


def test_concurrent_calls_overlap_their_latency(sandbox, moved, monkeypatch):
    """Four calls at once are all in their latency at the same moment: each one's sleep waits at a
    barrier of four, which only opens if no lock keeps the others out (no wall-clock bound, so a
    loaded machine cannot fail it; a serialising lock breaks the barrier after 10 s)."""
    on(sandbox.limits, latency={"ec2": 0.4})
    together = threading.Barrier(4, timeout=10)
    slept, errors = [], []

    def sleep(seconds):
        slept.append(seconds)
        together.wait()

    monkeypatch.setattr(sandbox.limits, "sleep", sleep)
    clients = [sandbox.client("ec2", config=NO_RETRIES) for _n in range(4)]

    def call(client):
        try:
            client.describe_instances()
        except Exception as exc:  # pylint: disable=broad-except
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and slept == [0.4] * 4
    assert sandbox.limits.stats()["admitted"] == {"ec2/non_mutating": 4}


# ---- never limited -----------------------------------------------------------------------------------


def test_requests_marked_as_the_sandboxs_own_are_never_limited_nor_delayed(sandbox, moved, ec2):
    sleeps = sandbox.limits.sleep = Sleeps()
    on(sandbox.limits, {"ec2": {"non_mutating": {"capacity": 0}}}, latency={"ec2": 0.5})
    marked = sandbox.client("ec2", config=NO_RETRIES)

    def mark(request, **_kwargs):
        request.headers["X-Keyless-Sandbox-Origin"] = "imds"

    marked.meta.events.register("before-sign.ec2.DescribeInstances", mark)
    assert outcome(marked.describe_instances) is None
    assert sleeps == []
    assert outcome(ec2.describe_instances) == EC2_THROTTLED
    assert sleeps == [0.5]
    assert sandbox.limits.stats() == {"admitted": {}, "throttled": {"ec2/non_mutating": 1}}


def test_moto_api_and_control_paths_are_never_limited_nor_delayed(sandbox, moved):
    sleeps = sandbox.limits.sleep = Sleeps()
    on(sandbox.limits, latency={"*": 0.5, "ec2": 0.5})
    with urllib.request.urlopen(sandbox.url + "/moto-api/data.json", timeout=5) as answer:
        assert answer.status == 200
    assert sandbox.control("GET", "/_sandbox/limits")[0] == 200
    assert sleeps == []


# ---- Python API, control API -----------------------------------------------------------------------


def test_configure_is_a_partial_update_and_checks_every_name_and_value(sandbox, moved):
    limits = sandbox.limits
    limits.configure(enabled=True, latency={"ec2": 0.1}, buckets={"ec2": {"associations": {"capacity": 7}}})
    limits.configure({"buckets": {"ec2": {"associations": {"refill": 1}}}})
    state = limits.status()
    assert state["buckets"]["ec2"]["associations"] == {"capacity": 7, "refill": 1}
    assert state["latency"] == dict(DEFAULT_LATENCY, ec2=0.1) and state["enabled"] is True
    for bad, named in (({"buckets": {"ec2": {"nope": {"capacity": 1}}}}, "nope"),
                       ({"buckets": {"sts": {"mutating": {"capacity": 1}}}}, "sts"),
                       ({"buckets": {"ec2": {"mutating": {"capacity": -1}}}}, "capacity"),
                       ({"buckets": {"ec2": {"mutating": {"burst": 1}}}}, "burst"),
                       ({"latency": {"ec2x": 1}}, "ec2x"),
                       ({"latency": {"ec2": "fast"}}, "latency of ec2"),
                       ({"enabled": "yes"}, "enabled"),
                       ({"ec2_message_form": "long"}, "long"),
                       ({"colour": 1}, "colour"),
                       ({"enabled": False, "buckets": {"ec2": {"nope": {}}}}, "nope")):
        with pytest.raises(LimitsError, match=named):
            limits.configure(bad)
        assert limits.status() == state


def test_control_api_round_trip(sandbox, moved):
    status, state = sandbox.control("GET", "/_sandbox/limits")
    assert status == 200
    assert state == {"enabled": False, "latency": DEFAULT_LATENCY, "buckets": DEFAULT_BUCKETS, "per_action": False,
                     "ec2_message_form": "classic", "stats": {"admitted": {}, "throttled": {}}}

    status, state = sandbox.control("POST", "/_sandbox/limits", {
        "enabled": True, "latency": {"ec2": 0}, "buckets": {"ec2": {"associations": {"capacity": 3}}}})
    assert status == 200 and state["enabled"] is True
    assert state["buckets"]["ec2"]["associations"] == {"capacity": 3, "refill": 5}
    assert sandbox.limits.status() == state

    for bad, named in (({"buckets": {"ec2": {"nope": {"capacity": 1}}}}, "nope"),
                       ({"buckets": {"ec2": {"mutating": {"capacity": -1}}}}, "capacity"),
                       ({"enabled": False, "latency": {"ec2x": 1}}, "ec2x"),
                       ([1, 2], "give an object")):
        status, answer = sandbox.control("POST", "/_sandbox/limits", bad)
        assert status == 400 and named in answer["error"]
        assert sandbox.control("GET", "/_sandbox/limits") == (200, state)
    assert sandbox.control("PUT", "/_sandbox/limits", {})[0] == 405

    status, state = sandbox.control("DELETE", "/_sandbox/limits")
    assert status == 200
    assert (state["enabled"], state["buckets"], state["latency"]) == (False, DEFAULT_BUCKETS, DEFAULT_LATENCY)


def test_aws_like_is_the_default_table_for_the_block_then_as_before(sandbox, moved, ec2):
    limits = sandbox.limits
    limits.configure(latency={"iam": 0.5})
    before = limits.status()
    with limits.aws_like(latency={"ec2": 0}) as inside:
        assert inside is limits and limits.enabled is True
        state = limits.status()
        assert state["buckets"] == DEFAULT_BUCKETS
        assert state["latency"] == dict(DEFAULT_LATENCY, ec2=0)
        # ModifyInstanceMetadataDefaults: 2 tokens in the default table.
        calls = [outcome(ec2.modify_instance_metadata_defaults, HttpTokens="required") for _n in range(3)]
        assert calls == [None, None, EC2_THROTTLED]
    assert limits.stats()["throttled"] == {"ec2/metadata_defaults": 1}
    after = limits.status()
    assert dict(after, stats=None) == dict(before, stats=None)
    assert [outcome(ec2.modify_instance_metadata_defaults, HttpTokens="required") for _n in range(3)] == [None] * 3


def test_aws_like_checks_its_overrides_first(sandbox):
    with pytest.raises(LimitsError, match="nope"):
        with sandbox.limits.aws_like(buckets={"ec2": {"nope": {}}}):
            pass
    assert sandbox.limits.enabled is False


def test_refill_makes_every_bucket_full_again(sandbox, moved, ec2):
    on(sandbox.limits, {"ec2": {"non_mutating": {"capacity": 1, "refill": 0},
                                "mutating": {"capacity": 1, "refill": 0}}})
    assert [outcome(ec2.describe_instances) for _n in range(2)] == [None, EC2_THROTTLED]
    assert [outcome(ec2.create_tags, Resources=["i-0123456789abcdef0"], Tags=[{"Key": "a", "Value": "b"}])
            for _n in range(2)] == [None, EC2_THROTTLED]
    sandbox.limits.refill()
    assert outcome(ec2.describe_instances) is None
    assert outcome(ec2.create_tags, Resources=["i-0123456789abcdef0"], Tags=[{"Key": "a", "Value": "b"}]) is None
    assert sandbox.limits.stats() == {"admitted": {"ec2/mutating": 2, "ec2/non_mutating": 2},
                                      "throttled": {"ec2/mutating": 1, "ec2/non_mutating": 1}}
