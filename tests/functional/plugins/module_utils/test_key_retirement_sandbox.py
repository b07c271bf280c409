"""key_retirement against the sandbox's IAM, whose last-use record is moto's own (a request signed
with a key is its last use): a key used after its removal stays active; an unused one is deactivated
after the soak, then deleted when asked; check mode changes nothing; a re-run changes nothing."""

import datetime
import json

import boto3

from ansible_collections.keyless.aws.plugins.module_utils.credential_chain import fingerprint
from ansible_collections.keyless.aws.plugins.module_utils.key_retirement import retire_keys

DAY = datetime.timedelta(days=1)


def params(fingerprints, removed_at, **kwargs):
    base = dict(fingerprints=fingerprints, state="inactive", removed_at=removed_at.isoformat(), soak_hours=24,
                delete_after_hours=24, still_found={})
    base.update(kwargs)
    return base


def status(iam, user):
    return [k["Status"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]]


def test_used_after_removal_stays_unused_is_deactivated_then_deleted(sandbox):
    iam = sandbox.client("iam")
    for user in ("used-app", "quiet-app"):
        iam.create_user(UserName=user)
    used = iam.create_access_key(UserName="used-app")["AccessKey"]
    quiet = iam.create_access_key(UserName="quiet-app")["AccessKey"]
    now = datetime.datetime.now(datetime.timezone.utc)
    removed = now - DAY  # both left the instances a day ago...
    boto3.client("sts", endpoint_url=sandbox.url, region_name="us-east-1", aws_access_key_id=used["AccessKeyId"],
                 aws_secret_access_key=used["SecretAccessKey"]).get_caller_identity()  # ...and one is used now
    named = [fingerprint(used["AccessKeyId"]), fingerprint(quiet["AccessKeyId"])]

    later = now + DAY
    predicted = retire_keys(iam, params(named, removed), True, now=later)
    assert [(k["user"], k["action"]) for k in predicted["keys"]] == [("quiet-app", "deactivate"), ("used-app", "keep")]
    assert "after it left the instances" in predicted["keys"][1]["reason"]
    assert status(iam, "quiet-app") == ["Active"]  # check mode changed nothing

    done = retire_keys(iam, params(named, removed), False, now=later)
    assert done["changed"] and done["diff"]["after"] == {"quiet-app ...{0}".format(quiet["AccessKeyId"][-4:]): "Inactive"}
    assert status(iam, "quiet-app") == ["Inactive"] and status(iam, "used-app") == ["Active"]
    again = retire_keys(iam, params(named, removed), False, now=later)
    assert again["changed"] is False

    too_soon = retire_keys(iam, params(named, removed, state="absent"), False, now=now + DAY / 2)
    assert too_soon["changed"] is False and status(iam, "quiet-app") == ["Inactive"]
    gone = retire_keys(iam, params(named, removed, state="absent"), False, now=later + DAY)
    assert [(k["user"], k["action"]) for k in gone["keys"]] == [("quiet-app", "delete"), ("used-app", "keep")]
    assert status(iam, "quiet-app") == [] and status(iam, "used-app") == ["Active"]
    text = json.dumps([predicted, done, again, gone], default=str)
    for secret in (used["AccessKeyId"], quiet["AccessKeyId"], used["SecretAccessKey"], quiet["SecretAccessKey"]):
        assert secret not in text
