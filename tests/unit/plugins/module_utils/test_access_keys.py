"""access_keys.py: the account's keys read once, described, matched by fingerprint; botocore
Stubber pins the requests (only the keys asked about have their last use read)."""

import datetime
import json

import boto3
import pytest
from botocore.stub import Stubber

from ansible_collections.keyless.aws.plugins.module_utils import access_keys
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.credential_chain import fingerprint

OLD_KEY = "AKIAZXCVBNMLKJHGFD3B"
NEW_KEY = "AKIAQWERTYUIOPASDF2A"
OTHER_KEY = "AKIAPOIUYTREWQLKJH4C"
WHEN = datetime.datetime(2026, 11, 30, 8, 0, tzinfo=datetime.timezone.utc)


@pytest.fixture
def iam():
    client = boto3.client("iam", region_name="us-east-1", aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
                          aws_secret_access_key="x" * 40)
    with Stubber(client) as stubber:
        client.stubber = stubber
        yield client
        stubber.assert_no_pending_responses()


def user(name):
    return {"UserName": name, "Path": "/", "UserId": "AIDA" + name.upper().ljust(17, "X")[:17],
            "Arn": "arn:aws:iam::123456789012:user/" + name, "CreateDate": WHEN}


def key(user_name, key_id, status="Active"):
    return {"UserName": user_name, "AccessKeyId": key_id, "Status": status, "CreateDate": WHEN}


def last_used(user_name, date=None, service="s3", region="eu-west-1"):
    used = {"ServiceName": "N/A", "Region": "N/A"} if date is None else {
        "LastUsedDate": date, "ServiceName": service, "Region": region}
    return {"UserName": user_name, "AccessKeyLastUsed": used}


def test_every_key_of_every_user_with_its_owner_status_and_last_use(iam):
    iam.stubber.add_response("list_users", {"Users": [user("report"), user("backup")]})
    iam.stubber.add_response("list_access_keys", {"AccessKeyMetadata": [key("backup", OTHER_KEY, "Inactive")]},
                             {"UserName": "backup"})
    iam.stubber.add_response("get_access_key_last_used", last_used("backup"), {"AccessKeyId": OTHER_KEY})
    iam.stubber.add_response("list_access_keys", {"AccessKeyMetadata": [key("report", OLD_KEY), key("report", NEW_KEY)]},
                             {"UserName": "report"})
    iam.stubber.add_response("get_access_key_last_used", last_used("report", WHEN), {"AccessKeyId": OLD_KEY})
    iam.stubber.add_response("get_access_key_last_used", last_used("report"), {"AccessKeyId": NEW_KEY})
    result = access_keys.key_owners(iam)
    assert [(k["user"], k["suffix"], k["status"]) for k in result["access_keys"]] == [
        ("backup", OTHER_KEY[-4:], "Inactive"), ("report", OLD_KEY[-4:], "Active"), ("report", NEW_KEY[-4:], "Active")]
    assert result["access_keys"][1]["last_used"] == {"date": WHEN.isoformat(), "service": "s3", "region": "eu-west-1"}
    assert result["access_keys"][2]["last_used"] is None
    assert result["access_keys"][1]["fingerprint"] == fingerprint(OLD_KEY)
    assert result["unmatched_fingerprints"] == []
    text = json.dumps(result)
    assert OLD_KEY not in text and NEW_KEY not in text and OTHER_KEY not in text


def test_fingerprints_pick_the_keys_and_only_theirs_have_their_last_use_read(iam):
    iam.stubber.add_response("list_users", {"Users": [user("report")]})
    iam.stubber.add_response("list_access_keys", {"AccessKeyMetadata": [key("report", OLD_KEY), key("report", NEW_KEY)]},
                             {"UserName": "report"})
    iam.stubber.add_response("get_access_key_last_used", last_used("report", WHEN), {"AccessKeyId": OLD_KEY})
    elsewhere = fingerprint(OTHER_KEY)
    result = access_keys.key_owners(iam, fingerprints=[fingerprint(OLD_KEY), elsewhere, fingerprint(OLD_KEY)])
    assert [k["suffix"] for k in result["access_keys"]] == [OLD_KEY[-4:]]
    assert result["unmatched_fingerprints"] == [elsewhere]


def test_a_user_deleted_while_listing_is_passed_over_but_a_named_one_must_exist(iam):
    iam.stubber.add_response("list_users", {"Users": [user("gone")]})
    iam.stubber.add_client_error("list_access_keys", "NoSuchEntity", "The user with name gone cannot be found.", 404)
    assert access_keys.key_owners(iam)["access_keys"] == []
    iam.stubber.add_client_error("list_access_keys", "NoSuchEntity", "The user with name gone cannot be found.", 404)
    with pytest.raises(KeylessError) as error:
        access_keys.key_owners(iam, user_names=["gone"])
    assert "listing the access keys of IAM user gone failed: AWS said NoSuchEntity" in error.value.message


@pytest.mark.parametrize("values,param", [
    ({"fingerprints": [OLD_KEY]}, "fingerprints"),  # a key id where a fingerprint belongs
    ({"fingerprints": ["ABCDEF"]}, "fingerprints"),
    ({"user_names": ["bad name!"]}, "user_names"),
])
def test_bad_input_fails_naming_the_parameter_before_any_call(iam, values, param):
    with pytest.raises(KeylessError) as error:
        access_keys.key_owners(iam, **values)
    assert error.value.param == param
    assert OLD_KEY not in error.value.message
