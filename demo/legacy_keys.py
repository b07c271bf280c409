"""Demo steps "from keys to keyless": a legacy instance whose software still uses an IAM user's key.

``setup DIR``: IAM user legacy-reports (S3 read, inline), its access key written where old software
keeps it on an instance: the app user's ~/.aws/credentials, and a systemd service's Environment=
line; the instance launched (tag app=keyless-demo-legacy-keys) with the sandbox's metadata service
started for it; the instance's filesystem stood up in DIR/host and an inventory DIR/hosts.yml that
reaches it (the folder stands for the instance, as the tests do). ``whoami DIR``: what the app's
software gets now - the credential source botocore takes and the identity STS sees. ``status``:
the key's status in IAM. Never prints a key id or a secret.
"""

import json
import os
import subprocess
import sys
import urllib.request

import boto3

SANDBOX = os.environ["KEYLESS_SANDBOX_URL"]
USER = "legacy-reports"
POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
                                                  "Resource": "*"}]}


def write(root, path, text, mode=0o644):
    real = os.path.join(root, path.lstrip("/"))
    os.makedirs(os.path.dirname(real), exist_ok=True)
    with open(real, "w") as handle:
        handle.write(text)
    os.chmod(real, mode)


def setup(folder):
    iam, ec2 = boto3.client("iam"), boto3.client("ec2")
    iam.create_user(UserName=USER)
    iam.put_user_policy(UserName=USER, PolicyName="reports-read", PolicyDocument=json.dumps(POLICY))
    key = iam.create_access_key(UserName=USER)["AccessKey"]
    instance = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                 MetadataOptions={"HttpTokens": "required"},
                                 TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                     {"Key": "app", "Value": "keyless-demo-legacy-keys"}]}])["Instances"][0]
    request = urllib.request.Request("{0}/_sandbox/imds/{1}".format(SANDBOX, instance["InstanceId"]), data=b"{}",
                                     method="POST", headers={"Content-Type": "application/json"})
    endpoint = json.loads(urllib.request.urlopen(request, timeout=30).read())["endpoint"]
    root = os.path.join(folder, "host")
    write(root, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\napp:x:1001:1001::/home/app:/bin/bash\n")
    os.makedirs(os.path.join(root, "root"), exist_ok=True)
    write(root, "/home/app/.aws/credentials", "[default]\naws_access_key_id = {0}\naws_secret_access_key = {1}\n"
          "region = us-east-1\n".format(key["AccessKeyId"], key["SecretAccessKey"]))
    # (0644: the folder's files are this user's, not the app user's; credential_sources_info judges each file as
    # the user who reads it would, and a 0600 file of another owner is one the app user could not read.)
    write(root, "/etc/systemd/system/reports.service",
          "[Unit]\nDescription=Nightly reports\n[Service]\nUser=app\nEnvironment=AWS_ACCESS_KEY_ID={0} "
          "AWS_SECRET_ACCESS_KEY={1}\nExecStart=/usr/bin/python3 /opt/reports.py\n".format(
              key["AccessKeyId"], key["SecretAccessKey"]))
    quiet = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(900)"], start_new_session=True,
                             env=dict((k, v) for k, v in os.environ.items() if not k.startswith("AWS_")))
    host = {"instance_id": instance["InstanceId"], "keyless_host_root": root, "keyless_host_pids": [quiet.pid],
            "instance_profile_verify_endpoint": endpoint, "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable}
    inventory = {"all": {"children": {"keyless_key_hosts": {"hosts": {"legacy-reports-1": host}}}}}
    with open(os.path.join(folder, "hosts.yml"), "w") as handle:
        json.dump(inventory, handle)  # JSON is YAML
    with open(os.path.join(folder, "endpoint"), "w") as handle:
        handle.write(endpoint)
    with open(os.path.join(folder, "quiet.pid"), "w") as handle:
        handle.write(str(quiet.pid))


def whoami(folder):
    """The app user's software, run as it would run on the instance (its HOME, the metadata service)."""
    with open(os.path.join(folder, "endpoint")) as handle:
        endpoint = handle.read().strip()
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith("AWS_"))
    env.update(HOME=os.path.join(folder, "host", "home", "app"), AWS_DEFAULT_REGION="us-east-1",
               AWS_ENDPOINT_URL=os.environ["AWS_URL"], AWS_EC2_METADATA_SERVICE_ENDPOINT=endpoint + "/",
               AWS_METADATA_SERVICE_TIMEOUT="5", AWS_METADATA_SERVICE_NUM_ATTEMPTS="3")
    code = ("import boto3; s = boto3.Session(); c = s.get_credentials(); "
            "print(c.method, s.client('sts').get_caller_identity()['Arn'])")
    print(subprocess.run([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, check=True)
          .stdout.decode().strip())


def status():
    keys = boto3.client("iam").list_access_keys(UserName=USER)["AccessKeyMetadata"]
    print(", ".join("...{0} {1}".format(k["AccessKeyId"][-4:], k["Status"]) for k in keys))


if __name__ == "__main__":
    {"setup": lambda: setup(sys.argv[2]), "whoami": lambda: whoami(sys.argv[2]), "status": status}[sys.argv[1]]()
