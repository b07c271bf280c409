"""The sandbox's IAM records an access key's last use from the requests signed with it (moto does it
itself: moto/core/responses.py marks the key on every request it authenticates), so
GetAccessKeyLastUsed tells the truth in tests: service, region, and a date that moves."""

import boto3


def test_a_request_signed_with_a_key_is_its_last_use(sandbox):
    iam = sandbox.client("iam")
    iam.create_user(UserName="legacy-app")
    key = iam.create_access_key(UserName="legacy-app")["AccessKey"]
    never = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])
    assert never["UserName"] == "legacy-app"
    assert "LastUsedDate" not in never["AccessKeyLastUsed"]
    assert never["AccessKeyLastUsed"]["ServiceName"] == "N/A"

    signed = dict(endpoint_url=sandbox.url, aws_access_key_id=key["AccessKeyId"],
                  aws_secret_access_key=key["SecretAccessKey"])
    boto3.client("ec2", region_name="eu-west-1", **signed).describe_instances()
    first = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])["AccessKeyLastUsed"]
    assert (first["ServiceName"], first["Region"]) == ("ec2", "eu-west-1") and first["LastUsedDate"]

    boto3.client("s3", region_name="us-east-2", **signed).list_buckets()
    second = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])["AccessKeyLastUsed"]
    assert (second["ServiceName"], second["Region"]) == ("s3", "us-east-2")
    assert second["LastUsedDate"] >= first["LastUsedDate"]
