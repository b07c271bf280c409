"""The demo's application on the instance: plain boto3, no keys anywhere.

botocore finds the role's credentials through the instance metadata service (here the
sandbox's emulator, named by AWS_EC2_METADATA_SERVICE_ENDPOINT). Prints what it could do as
JSON; never prints a credential.
"""

import json

import boto3
import botocore.exceptions

session = boto3.Session()
credentials = session.get_credentials()
s3 = session.client("s3")
seen = {
    "credential_source": credentials.method if credentials else None,
    "identity": session.client("sts").get_caller_identity()["Arn"],
    "buckets": [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]],
}
try:
    s3.create_bucket(Bucket="keyless-demo-not-allowed")
    seen["create_bucket"] = "allowed"
except botocore.exceptions.ClientError as error:
    seen["create_bucket"] = "denied: " + error.response["Error"]["Code"]
print(json.dumps(seen))
