import json
import urllib.parse

import pytest

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils import trust


def policy(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


EC2_ALLOW = {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}


def test_principal_per_partition():
    assert trust.ec2_principal("aws") == "ec2.amazonaws.com"
    assert trust.ec2_principal("aws-us-gov") == "ec2.amazonaws.com"
    assert trust.ec2_principal("aws-cn") == "ec2.amazonaws.com.cn"
    with pytest.raises(KeylessError):
        trust.ec2_principal("mars")


@pytest.mark.parametrize("document", [
    policy(EC2_ALLOW),
    json.dumps(policy(EC2_ALLOW)),
    urllib.parse.quote(json.dumps(policy(EC2_ALLOW))),
    policy(dict(EC2_ALLOW, Principal={"Service": ["lambda.amazonaws.com", "ec2.amazonaws.com"]})),
    policy(dict(EC2_ALLOW, Action=["sts:AssumeRole", "sts:TagSession"])),
    policy(dict(EC2_ALLOW, Action="sts:*")),
    policy(dict(EC2_ALLOW, Action="STS:ASSUMEROLE")),
])
def test_trusts_ec2(document):
    analysis = trust.analyse_trust(document)
    assert analysis["trusts_ec2"] is True
    assert analysis["problem"] is None


def test_missing_statement_says_what_to_add():
    analysis = trust.analyse_trust(policy({"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                           "Action": "sts:AssumeRole"}))
    assert analysis["trusts_ec2"] is False
    assert '"Principal": {"Service": "ec2.amazonaws.com"}' in analysis["problem"]


def test_wrong_action_is_named():
    analysis = trust.analyse_trust(policy(dict(EC2_ALLOW, Action="sts:TagSession")))
    assert analysis["trusts_ec2"] is False
    assert "allows sts:TagSession, not sts:AssumeRole" in analysis["problem"]


def test_commercial_principal_in_china_is_named():
    analysis = trust.analyse_trust(policy(EC2_ALLOW), partition="aws-cn")
    assert analysis["trusts_ec2"] is False
    assert "ec2.amazonaws.com.cn" in analysis["problem"]
    assert trust.analyse_trust(policy(dict(EC2_ALLOW, Principal={"Service": "ec2.amazonaws.com.cn"})),
                               partition="aws-cn")["trusts_ec2"]


def test_deny_wins():
    analysis = trust.analyse_trust(policy(EC2_ALLOW, dict(EC2_ALLOW, Effect="Deny")))
    assert analysis["trusts_ec2"] is False
    assert "denies" in analysis["problem"]


def test_conditional_and_wildcard_are_flagged():
    conditional = trust.analyse_trust(policy(dict(EC2_ALLOW, Condition={"StringEquals": {"aws:SourceAccount": "1"}})))
    assert conditional["trusts_ec2"] and conditional["conditional"]
    wildcard = trust.analyse_trust(policy({"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"}))
    assert wildcard["trusts_ec2"] and wildcard["wildcard_principal"]
    aws_wildcard = trust.analyse_trust(policy({"Effect": "Allow", "Principal": {"AWS": "*"},
                                               "Action": "sts:AssumeRole"}))
    assert aws_wildcard["wildcard_principal"]


def test_empty_and_broken_documents():
    assert trust.analyse_trust({})["trusts_ec2"] is False
    assert trust.analyse_trust("")["trusts_ec2"] is False
    with pytest.raises(KeylessError, match="not valid JSON"):
        trust.analyse_trust("{nope")


def test_render_trust_policy():
    rendered = trust.render_trust_policy("aws-cn", conditions={"StringEquals": {"aws:SourceAccount": "123456789012"}})
    statement = rendered["Statement"][0]
    assert statement["Principal"] == {"Service": "ec2.amazonaws.com.cn"}
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"
    with pytest.raises(KeylessError, match="any principal"):
        trust.render_trust_policy("aws", extra_statements=[{"Effect": "Allow", "Principal": {"AWS": "*"},
                                                           "Action": "sts:AssumeRole"}])
