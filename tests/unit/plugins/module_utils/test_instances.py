"""instances.py: the one reader of instances and associations, within EC2's filter limit, with
scripted clients and a fake clock (nothing here really sleeps)."""

import pytest

from ansible_collections.keyless.aws.plugins.module_utils import instances as I
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import Timing

P1 = "arn:aws:iam::123456789012:instance-profile/web"
P2 = "arn:aws:iam::123456789012:instance-profile/web-v2"


def assoc(instance_id, arn, state="associated", association_id="iip-assoc-1", timestamp="2026-01-01"):
    return {"InstanceId": instance_id, "AssociationId": association_id, "State": state,
            "IamInstanceProfile": {"Arn": arn, "Id": "AIPA"}, "Timestamp": timestamp}


class FakeEC2:
    """DescribeInstances as EC2 answers it: filters ANDed, values ORed, at most 200 values."""

    def __init__(self, instances):
        self.instances = instances  # [{InstanceId, State: {Name}, Tags: [...]}]
        self.calls = []

    @staticmethod
    def _matches(instance, name, values):
        if name == "instance-id":
            return instance["InstanceId"] in values
        if name == "instance-state-name":
            return instance["State"]["Name"] in values
        if name.startswith("tag:"):
            tags = dict((t["Key"], t["Value"]) for t in instance.get("Tags") or [])
            return tags.get(name[4:]) in values
        raise AssertionError("filter {0} not modelled".format(name))

    def describe_instances(self, Filters=(), MaxResults=None, NextToken=None):
        values = sum(len(f["Values"]) for f in Filters)
        self.calls.append(values)
        assert values <= 200, "FilterLimitExceeded: {0} values".format(values)
        found = [i for i in self.instances if all(self._matches(i, f["Name"], f["Values"]) for f in Filters)]
        return {"Reservations": [{"Instances": found}]}


def instance(number, state="running", team=None):
    tags = [{"Key": "team", "Value": team}] if team else []
    return {"InstanceId": "i-{0:017x}".format(number), "State": {"Name": state}, "Tags": tags}


def test_chunks_split_without_losing_or_reordering():
    items = list(range(450))
    parts = list(I.chunks(items, 200))
    assert [len(p) for p in parts] == [200, 200, 50]
    assert sum(parts, []) == items


def test_check_filters_names_the_parameter():
    assert I.check_filters({"tag:team": "web", "instance-state-name": ["running"]})
    with pytest.raises(KeylessError) as raised:
        I.check_filters({"tag:team": None})
    assert raised.value.param == "filters"
    with pytest.raises(KeylessError):
        I.check_filters({"": "x"})


def test_split_filters_keeps_every_call_within_200_values_and_the_meaning():
    ids = ["i-{0:017x}".format(n) for n in range(250)]
    parts = I.split_filters([{"Name": "tag:team", "Values": ["web"]}, {"Name": "instance-id", "Values": ids}])
    assert [sum(len(f["Values"]) for f in part) for part in parts] == [200, 52]
    assert all(part[0] == {"Name": "tag:team", "Values": ["web"]} for part in parts)
    assert sum((part[1]["Values"] for part in parts), []) == ids
    assert I.split_filters([{"Name": "tag:team", "Values": ["web"]}]) == [[{"Name": "tag:team", "Values": ["web"]}]]


def test_filters_that_cannot_be_split_are_refused_naming_the_parameter():
    many = [{"Name": "tag:k{0}".format(n), "Values": ["a", "b"]} for n in range(101)]
    with pytest.raises(KeylessError) as raised:
        I.split_filters(many, "filters")
    assert raised.value.param == "filters"
    assert "202 values" in raised.value.message and "at most 200" in raised.value.message


def test_250_ids_and_a_tag_filter_are_read_within_the_limit_and_narrowed():
    fleet = [instance(n, team="web" if n % 2 else "db") for n in range(250)]
    ec2 = FakeEC2(fleet)
    ids = [i["InstanceId"] for i in fleet]
    selected = I.select_instances(ec2, ids, {"tag:team": "web"})
    assert [i["InstanceId"] for i in selected] == [i for n, i in enumerate(ids) if n % 2]
    # the missing ids (the db half) are checked for existence too, within the limit
    assert max(ec2.calls) <= 200


def test_filters_alone_select_live_instances_and_an_empty_dict_selects_none():
    ec2 = FakeEC2([instance(1), instance(2, "stopped"), instance(3, "terminated"), instance(4, "pending")])
    assert I.select_instances(ec2, None, {}) == []
    live = I.select_instances(ec2, None, {"instance-state-name": list(I.LIVE_STATES)})
    assert [i["State"]["Name"] for i in live] == ["running", "stopped", "pending"]
    with pytest.raises(KeylessError) as raised:
        I.select_instances(ec2, None, {"instance-state-name": ["terminated"]})
    assert raised.value.param == "filters"


def test_unknown_and_terminated_ids_fail_naming_them():
    ec2 = FakeEC2([instance(1), instance(3, "terminated")])
    with pytest.raises(KeylessError) as raised:
        I.select_instances(ec2, [instance(1)["InstanceId"], instance(2)["InstanceId"]], region="eu-west-1")
    assert raised.value.message.startswith("instance_ids: 1 instance(s) do not exist in eu-west-1: i-")
    with pytest.raises(KeylessError) as raised:
        I.select_instances(ec2, [instance(3)["InstanceId"]], gone_reason="their metadata options cannot change")
    assert "terminated or shutting down, and their metadata options cannot change" in raised.value.message
    assert I.select_instances(ec2, [instance(3)["InstanceId"]], allow_gone=True)[0]["State"]["Name"] == "terminated"


class FakeTime:
    def __init__(self):
        self.now = 0.0

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_pending_and_stopping_instances_are_waited_out_reading_only_those():
    fleet = [instance(1, "pending"), instance(2, "stopping"), instance(3, "running")]
    ec2 = FakeEC2(fleet)
    fake = FakeTime()

    def settle_after_two_reads(*args, **kwargs):
        answer = FakeEC2.describe_instances(ec2, *args, **kwargs)
        if len(ec2.calls) >= 2:
            fleet[0]["State"]["Name"], fleet[1]["State"]["Name"] = "running", "stopped"
        return answer

    ec2.describe_instances = settle_after_two_reads
    settled = I.wait_for_states(ec2, [dict(i) for i in fleet], 60, Timing(sleep=fake.sleep, clock=fake.clock))
    assert [i["State"]["Name"] for i in settled] == ["running", "stopped", "running"]
    assert ec2.calls == [2, 2]  # only the two on their way, in one batched read per poll


def test_an_instance_that_never_settles_fails_naming_it_and_wait_timeout():
    ec2 = FakeEC2([instance(1, "pending")])
    fake = FakeTime()
    with pytest.raises(KeylessError) as raised:
        I.wait_for_states(ec2, ec2.instances, 5, Timing(sleep=fake.sleep, clock=fake.clock))
    assert raised.value.param == "wait_timeout"
    assert "(pending)" in raised.value.message and fake.now <= 5


def test_current_association_is_the_active_one():
    assert I.current_association([]) is None
    assert I.current_association(None) is None
    assert I.current_association([assoc("i-1", P1, "disassociating")]) is None
    swap = [assoc("i-1", P1, "disassociating", "iip-assoc-old"), assoc("i-1", P2, "associating", "iip-assoc-new")]
    assert I.current_association(swap) == {"association_id": "iip-assoc-new", "instance_profile_arn": P2,
                                           "state": "associating"}
    two = [assoc("i-1", P1, timestamp="2026-01-01", association_id="a"),
           assoc("i-1", P2, timestamp="2026-02-01", association_id="b")]
    assert I.current_association(two)["association_id"] == "b"


@pytest.mark.parametrize("states, settled", [
    ([], True),
    (["associated"], True),
    (["associating"], False),
    (["disassociating"], False),
    (["disassociating", "associated"], True),   # the old half of a finished swap
    (["disassociating", "associating"], False),
])
def test_is_settled(states, settled):
    assert I.is_settled([assoc("i-1", P1, s) for s in states]) is settled
