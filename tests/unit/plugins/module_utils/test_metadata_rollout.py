"""metadata_rollout.py: keyless.aws.ec2_metadata_options as a step of a longer run - the stages of a
plan (canary_percent) and, in check mode, the launch templates an earlier task hardens
(hardened_launch_templates: the instance_profile role's check-mode prediction)."""

import boto3
import pytest
from botocore.stub import Stubber

from ansible_collections.keyless.aws.plugins.module_utils import metadata_rollout as rollout
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError

WEB_ID, LEGACY_ID, OTHER_ID = "lt-0000000000000000a", "lt-0000000000000000b", "lt-0000000000000000c"
I1, I2, I3 = "i-00000000000000001", "i-00000000000000002", "i-00000000000000003"


def params(**kwargs):
    base = dict(instance_ids=[], filters={}, launch_templates=[], account_defaults=False, http_tokens="required",
                http_endpoint=None, http_put_response_hop_limit=None, instance_metadata_tags=None,
                http_protocol_ipv6=None, wait=True, wait_timeout=60, set_default_version=True,
                version_description=None, max_concurrency=1, canary_percent=None, hardened_launch_templates=[])
    base.update(kwargs)
    return base


def enforcing(**kwargs):
    return params(**dict(dict(account_defaults=True, http_tokens_enforced="enabled"), **kwargs))


@pytest.fixture
def ec2():
    client = boto3.client("ec2", region_name="us-east-1", aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
                          aws_secret_access_key="x" * 40)
    with Stubber(client) as stubber:
        client.stubber = stubber
        yield client
        stubber.assert_no_pending_responses()


def templates_page(*templates, token=None):
    page = {"LaunchTemplates": [{"LaunchTemplateId": i, "LaunchTemplateName": n} for i, n in templates]}
    if token:
        page["NextToken"] = token
    return page


class FakeJob:
    """manage_metadata_options, recorded: the params it was given and the result it returns."""

    def __init__(self, result):
        self.result = result
        self.calls = []

    def __call__(self, ec2, params, check_mode, **kwargs):
        self.calls.append((params, check_mode, kwargs))
        return dict(self.result)


@pytest.fixture
def job(monkeypatch):
    fake = FakeJob({"changed": False, "instances": [], "launch_templates": [], "account_defaults": None,
                    "diff": {"before": {}, "after": {}}})
    monkeypatch.setattr(rollout, "manage_metadata_options", fake)
    return fake


# ---- input -------------------------------------------------------------------------------------


@pytest.mark.parametrize("percent", [-5, 101, True, "ten"])
def test_a_canary_share_outside_0_to_100_fails_naming_it(percent):
    with pytest.raises(KeylessError) as error:
        rollout.checked_rollout_input(params(instance_ids=[I1], canary_percent=percent))
    assert error.value.param == "canary_percent"


def test_stages_need_instances():
    with pytest.raises(KeylessError) as error:
        rollout.checked_rollout_input(params(account_defaults=True, canary_percent=10))
    assert error.value.param == "canary_percent"
    assert "name them (instance_ids or filters)" in error.value.message


@pytest.mark.parametrize("entry, fragment", [
    ({"name": "web", "id": WEB_ID, "version": "$Default"}, "exactly one of name or id"),
    ({"id": "lt-nothex", "version": "$Default"}, "is not a launch template id"),
    ({"name": "web", "version": "first"}, "hardened_launch_templates[0]"),
])
def test_bad_hardened_templates_fail_naming_the_parameter(entry, fragment):
    with pytest.raises(KeylessError) as error:
        rollout.checked_rollout_input(enforcing(hardened_launch_templates=[entry]))
    assert error.value.param == "hardened_launch_templates"
    assert fragment in error.value.message


def test_bad_input_fails_before_any_aws_call(ec2, job):
    # The Stubber has no answer queued: any call would fail the test with another error.
    with pytest.raises(KeylessError) as error:
        rollout.manage_rollout_step(ec2, enforcing(hardened_launch_templates=[{"name": "web", "version": "$Default"}],
                                                   http_put_response_hop_limit=65), True)
    assert error.value.param == "http_put_response_hop_limit"
    assert job.calls == []


# ---- the stages --------------------------------------------------------------------------------


def test_the_plan_returns_its_stages(ec2, job):
    job.result["instances"] = [{"instance_id": I3, "changed": True}, {"instance_id": I1, "changed": True},
                               {"instance_id": I2, "changed": False, "skipped_for_imdsv1_use": True}]
    result = rollout.manage_rollout_step(ec2, params(instance_ids=[I1, I2, I3], canary_percent=50), True)
    assert result["stages"] == {"canary": [I1], "rest": [I3], "skipped": [I2]}
    assert result["hardened_launch_templates"] == []


def test_no_share_no_stages(ec2, job):
    result = rollout.manage_rollout_step(ec2, params(instance_ids=[I1]), True)
    assert result["stages"] is None


# ---- the templates an earlier task hardens -----------------------------------------------------


@pytest.mark.parametrize("check_mode, extra, counted", [
    (True, {}, True),
    (False, {}, False),                                      # a real run finds them hardened
    (True, {"http_tokens_enforced": "disabled"}, False),     # no enforcement report read
    (True, {"account_defaults": False, "http_tokens_enforced": None, "instance_ids": [I1]}, False),
])
def test_hardened_templates_are_counted_only_where_the_report_reads_them_before_they_are(check_mode, extra, counted):
    assert rollout.counts_hardened_templates(enforcing(**extra), check_mode) is counted


def test_existing_templates_are_counted_missing_ones_left_out_and_the_tasks_own_not_twice(ec2):
    ec2.stubber.add_response("describe_launch_templates", templates_page((WEB_ID, "web"), token="page-2"), {})
    ec2.stubber.add_response("describe_launch_templates", templates_page((LEGACY_ID, "legacy"), (OTHER_ID, "other")),
                             {"NextToken": "page-2"})
    hardened = [{"name": "web", "id": None, "version": "$Latest"},
                {"name": "not-yet", "id": None, "version": "$Latest"},    # the earlier task creates it
                {"name": None, "id": LEGACY_ID, "version": "3"},
                {"name": "legacy", "id": None, "version": "$Latest"},     # the same template again
                {"name": "other", "id": None, "version": "$Default"}]     # the task hardens it itself
    given = [{"name": None, "id": OTHER_ID, "version": "$Default"}]
    assert rollout.hardened_first(ec2, hardened, given) == [
        {"launch_template_id": WEB_ID, "launch_template_name": "web", "version": "$Latest"},
        {"launch_template_id": LEGACY_ID, "launch_template_name": "legacy", "version": "3"},
    ]


def test_check_mode_reads_them_for_the_report_and_leaves_them_out_of_the_tasks_changes(ec2, job):
    ec2.stubber.add_response("describe_launch_templates", templates_page((WEB_ID, "web"), (LEGACY_ID, "legacy")), {})
    job.result.update(
        changed=True,
        launch_templates=[{"launch_template_id": WEB_ID, "launch_template_name": "web", "changed": True},
                          {"launch_template_id": LEGACY_ID, "launch_template_name": "legacy", "changed": False}],
        account_defaults={"changed": True, "enforcement_report": {"launch_templates": [], "auto_scaling_groups": []}},
        diff=[{"before_header": "launch template web ({0})".format(WEB_ID), "after_header": "x", "before": {},
               "after": {}},
              {"before_header": "account instance metadata defaults", "after_header": "y", "before": {}, "after": {}}])
    task = enforcing(launch_templates=[{"name": "legacy", "id": None, "version": "$Default"}],
                     hardened_launch_templates=[{"name": "web", "version": "$Latest"}])
    result = rollout.manage_rollout_step(ec2, task, True)
    (given, check_mode, _kwargs), = job.calls
    assert check_mode is True
    # The report read web as the earlier task leaves it: the version named, hardened by this task's plan ...
    assert given["launch_templates"] == [{"name": "legacy", "id": None, "version": "$Default"},
                                         {"id": WEB_ID, "name": None, "version": "$Latest"}]
    # ... and the task's own result does not claim it.
    assert [t["launch_template_name"] for t in result["launch_templates"]] == ["legacy"]
    assert [d["before_header"] for d in result["diff"]] == ["account instance metadata defaults"]
    assert result["changed"] is True  # the account defaults
    assert result["hardened_launch_templates"] == [
        {"launch_template_id": WEB_ID, "launch_template_name": "web", "version": "$Latest"}]


def test_a_task_that_only_counted_hardened_templates_changes_nothing(ec2, job):
    ec2.stubber.add_response("describe_launch_templates", templates_page((WEB_ID, "web")), {})
    job.result.update(
        changed=True,
        launch_templates=[{"launch_template_id": WEB_ID, "launch_template_name": "web", "changed": True}],
        account_defaults={"changed": False},
        diff=[{"before_header": "launch template web ({0})".format(WEB_ID), "after_header": "x", "before": {},
               "after": {}}])
    result = rollout.manage_rollout_step(ec2, enforcing(hardened_launch_templates=[{"name": "web"}]), True)
    assert result["changed"] is False
    assert result["launch_templates"] == []
    assert result["diff"] == {"before": {}, "after": {}}


def test_a_real_run_passes_its_templates_on_untouched_and_reads_nothing_more(ec2, job):
    task = enforcing(hardened_launch_templates=[{"name": "web", "version": "$Latest"}])
    result = rollout.manage_rollout_step(ec2, task, False)
    assert job.calls[0][0]["launch_templates"] == []
    assert result["hardened_launch_templates"] == []
