"""The finding_counts filter: the audit report's totals across targets."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.keyless.aws.plugins.filter.finding_counts import finding_counts

FINDINGS = [
    {"kind": "instance_without_profile", "account_id": "111111111111", "region": "us-east-1"},
    {"kind": "instance_without_profile", "account_id": "222222222222", "region": "us-east-1"},
    {"kind": "instance_allows_imdsv1", "account_id": "111111111111", "region": "eu-west-1"},
]
KINDS = ["instance_without_profile", "instance_allows_imdsv1", "profile_unused"]


def test_per_kind_every_kind_listed():
    assert finding_counts(FINDINGS, KINDS) == {"instance_without_profile": 2, "instance_allows_imdsv1": 1,
                                               "profile_unused": 0}


def test_a_kind_not_listed_is_counted_too():
    assert finding_counts(FINDINGS, ["profile_unused"]) == {"profile_unused": 0, "instance_without_profile": 2,
                                                            "instance_allows_imdsv1": 1}


def test_per_account_then_kind():
    assert finding_counts(FINDINGS, KINDS, by="account_id") == {
        "111111111111": {"instance_without_profile": 1, "instance_allows_imdsv1": 1, "profile_unused": 0},
        "222222222222": {"instance_without_profile": 1, "instance_allows_imdsv1": 0, "profile_unused": 0}}


def test_per_region_and_nothing_found():
    assert list(finding_counts(FINDINGS, by="region")) == ["eu-west-1", "us-east-1"]
    assert finding_counts([], KINDS) == dict((kind, 0) for kind in KINDS)
    assert finding_counts([], KINDS, by="region") == {}


@pytest.mark.parametrize("findings, by, message", [
    ("nope", None, "give a list of findings"),
    ([{"resource": "i-1"}], None, "each a dict with a kind"),
    ([{"kind": "x"}], "account_id", "1 finding\\(s\\) have no 'account_id'"),
])
def test_bad_input_is_named(findings, by, message):
    with pytest.raises(AnsibleFilterError, match=message):
        finding_counts(findings, KINDS, by=by)
