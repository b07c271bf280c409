"""stages.py: the collection's one canary rule, and the stages of an instance rollout
(keyless.aws.ec2_metadata_options's canary_percent: playbooks/harden.yml's plan)."""

import pytest

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.stages import canary_split
from ansible_collections.keyless.aws.plugins.module_utils.stages import check_percent
from ansible_collections.keyless.aws.plugins.module_utils.stages import instance_stages


@pytest.mark.parametrize("count, percent, canaries", [
    (10, 10, 1),    # a tenth of ten
    (11, 10, 2),    # ceil: 1.1 -> 2
    (3, 10, 1),     # at least one canary when there is anything and a share is asked for
    (4, 25, 1),
    (4, 50, 2),
    (5, 0, 0),      # 0: no canary stage
    (5, 100, 5),    # 100: everything is a canary
    (0, 50, 0),     # nothing to split
    (3, 33.4, 2),   # a float share: ceil(1.002)
])
def test_canary_split_takes_the_ceiling_of_the_share_in_the_order_given(count, percent, canaries):
    items = ["i-{0:017x}".format(n) for n in range(count)]
    first, rest = canary_split(items, percent)
    assert first == items[:canaries]
    assert rest == items[canaries:]


@pytest.mark.parametrize("value", [-1, 100.5, 150, "10", None, True])
def test_a_share_outside_0_to_100_fails_naming_the_parameter(value):
    with pytest.raises(KeylessError) as error:
        check_percent(value, "canary_percent")
    assert error.value.param == "canary_percent"
    assert "0 to 100" in error.value.message


def entry(instance_id, changed, skipped=False):
    return {"instance_id": instance_id, "changed": changed, "skipped_for_imdsv1_use": skipped}


def test_only_the_instances_that_change_are_staged_sorted_by_id():
    plan = [entry("i-0000000000000000c", True), entry("i-0000000000000000a", True),
            entry("i-0000000000000000b", False),                 # already as asked: in no stage
            entry("i-0000000000000000d", False, skipped=True),   # used IMDSv1: skipped
            entry("i-00000000000000001", True)]
    assert instance_stages(plan, 25) == {
        "canary": ["i-00000000000000001"],
        "rest": ["i-0000000000000000a", "i-0000000000000000c"],
        "skipped": ["i-0000000000000000d"],
    }


def test_the_same_plan_in_another_order_picks_the_same_canaries():
    plan = [entry("i-{0:017x}".format(n), True) for n in range(7)]
    assert instance_stages(plan, 30) == instance_stages(list(reversed(plan)), 30)
    assert instance_stages(plan, 30)["canary"] == ["i-{0:017x}".format(n) for n in range(3)]


@pytest.mark.parametrize("percent, canary, rest", [(0, 0, 4), (100, 4, 0), (1, 1, 3)])
def test_no_canary_stage_and_all_canaries(percent, canary, rest):
    stages = instance_stages([entry("i-{0:017x}".format(n), True) for n in range(4)], percent)
    assert (len(stages["canary"]), len(stages["rest"])) == (canary, rest)


def test_nothing_to_change_means_empty_stages():
    assert instance_stages([entry("i-0123456789abcdef0", False)], 10) == {"canary": [], "rest": [], "skipped": []}
    assert instance_stages([], 10) == {"canary": [], "rest": [], "skipped": []}
