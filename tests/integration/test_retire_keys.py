"""playbooks/retire_keys.yml end to end, against the sandbox and three instances stood up in folders.

web-1 and web-3 share the report writer's key (a credentials file; a service unit); web-2 holds the
billing key. The plan (--check --diff) changes nothing; the canary stage moves web-1 alone, and the
shared key stays active while web-3 still holds it; the rest follows; after the soak the shared key
is deactivated, while the billing key, used after it left web-2, is kept and the report says when.
Software on web-1 then calls AWS as the instance role, not as the user. No secret nor whole key id
in any output at -vvv, and a re-run changes nothing.
"""

import json
import os
import subprocess
import sys

import boto3
import pytest
import yaml

from runner import ROOT
from runner import run_playbook
from sandbox.seed import run_instances

PLAYBOOK = os.path.join(ROOT, "playbooks", "retire_keys.yml")
POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}


def write(root, path, text):
    real = os.path.join(str(root), path.lstrip("/"))
    os.makedirs(os.path.dirname(real), exist_ok=True)
    with open(real, "w") as handle:
        handle.write(text)


def read(root, path):
    with open(os.path.join(str(root), path.lstrip("/"))) as handle:
        return handle.read()


@pytest.fixture
def fleet(sandbox, tmp_path):
    iam = sandbox.client("iam")
    managed = iam.create_policy(PolicyName="reports-read", PolicyDocument=json.dumps(POLICY))["Policy"]["Arn"]
    keys = {}
    for user in ("report-writer", "billing"):
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName="work", PolicyDocument=json.dumps(POLICY))
        keys[user] = iam.create_access_key(UserName=user)["AccessKey"]
    iam.attach_user_policy(UserName="report-writer", PolicyArn=managed)
    report, billing = keys["report-writer"], keys["billing"]
    hosts, emulators = {}, {}
    for name in ("web-1", "web-2", "web-3"):
        instance_id = run_instances(sandbox, ImageId="ami-12345678")[0]["InstanceId"]
        emulators[name] = sandbox.imds.start(instance_id)
        root = tmp_path / name
        write(root, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\napp:x:1001:1001::/home/app:/bin/bash\n")
        os.makedirs(str(root / "root"))
        hosts[name] = {"instance_id": instance_id, "keyless_host_root": str(root),
                       "instance_profile_verify_endpoint": emulators[name].url,
                       "ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    credentials = "[default]\nregion = eu-west-1\naws_access_key_id = {0}\naws_secret_access_key = {1}\n[other]\nregion = us-west-2\n"
    for host, key in (("web-1", report), ("web-2", billing)):
        write(tmp_path / host, "/home/app/.aws/credentials", credentials.format(key["AccessKeyId"], key["SecretAccessKey"]))
    write(tmp_path / "web-3", "/etc/systemd/system/report.service",
          "[Service]\nUser=app\nEnvironment=AWS_ACCESS_KEY_ID={0} AWS_SECRET_ACCESS_KEY={1} AWS_REGION=eu-west-1\n"
          "ExecStart=/usr/bin/python3 /opt/report.py\n".format(report["AccessKeyId"], report["SecretAccessKey"]))
    # A process with no AWS variable stands for the host's process table (the test machine's own is not the host's).
    quiet = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                             env=dict((k, v) for k, v in os.environ.items() if not k.startswith("AWS_")))
    for variables in hosts.values():
        variables["keyless_host_pids"] = [quiet.pid]
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"keyless_key_hosts": {"hosts": hosts}}}}))
    yield {"iam": iam, "keys": keys, "hosts": hosts, "inventory": str(inventory), "root": tmp_path,
           "emulators": emulators, "managed": managed}
    quiet.kill()
    quiet.wait()


def retire(sandbox, fleet, name, *args, **variables):
    base = {"retire_keys_become": False, "retire_keys_canary_percent": 1, "retire_keys_soak_hours": 0,
            "retire_keys_verify_timeout": 60}
    base.update(variables)
    return run_playbook(sandbox, PLAYBOOK, "-i", fleet["inventory"], "-e", json.dumps(base), *args, name=name)


def status(iam, user):
    return [key["Status"] for key in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]]


def caller_on(fleet, host, sandbox):
    """What software on the host that reads the app user's files gets: the identity STS sees."""
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith("AWS_"))
    env.update(fleet["emulators"][host].env())
    env.update(HOME=os.path.join(str(fleet["root"]), host, "home", "app"), AWS_DEFAULT_REGION="us-east-1")
    code = ("import boto3, sys; print(boto3.client('sts', endpoint_url=sys.argv[1])"
            ".get_caller_identity()['Arn'])")
    return subprocess.run([sys.executable, "-c", code, sandbox.url], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, check=True).stdout.decode().strip()


def no_secret(fleet, *texts):
    for text in texts:
        for key in fleet["keys"].values():
            assert key["AccessKeyId"] not in text and key["SecretAccessKey"] not in text


def counts(output):
    """{host: changed count} from the play recap."""
    recap = output[output.rindex("PLAY RECAP"):]
    return dict((line.split()[0], int(line.split("changed=")[1].split()[0])) for line in recap.splitlines()[1:]
                if "changed=" in line)


def test_keys_leave_in_stages_and_are_retired_only_when_safe(sandbox, fleet):
    iam, keys, root = fleet["iam"], fleet["keys"], fleet["root"]
    before = caller_on(fleet, "web-1", sandbox)
    assert before.endswith(":user/report-writer")
    files = dict((host, sorted(os.walk(str(root / host)))) for host in fleet["hosts"])
    credentials_before = read(root / "web-1", "/home/app/.aws/credentials")

    plan = retire(sandbox, fleet, "retire-keys-plan", "--check", "--diff", "-vvv")
    assert plan.returncode == 0, plan.output[-6000:]
    assert "canaries: web-1; then: web-2, web-3" in plan.output
    assert "on web-1, web-3; used by web-1: user app, web-3: service report.service; replaced by role " \
        "keyless-report-writer" in plan.output
    assert "line 3: aws_access_key_id = ...{0}".format(keys["report-writer"]["AccessKeyId"][-4:]) in plan.output
    assert dict((host, sorted(os.walk(str(root / host)))) for host in fleet["hosts"]) == files
    assert iam.list_roles()["Roles"] == [] and status(iam, "report-writer") == ["Active"]

    canary = retire(sandbox, fleet, "retire-keys-canary", "-vvv", retire_keys_stages=["canary", "retire"])
    assert canary.returncode == 0, canary.output[-6000:]
    role = iam.get_role(RoleName="keyless-report-writer")["Role"]
    assert [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]] \
        == [fleet["managed"]]
    assert iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"] == ["user-work"]
    assert read(root / "web-1", "/home/app/.aws/credentials") == "[default]\nregion = eu-west-1\n[other]\nregion = us-west-2\n"
    assert credentials_before != read(root / "web-1", "/home/app/.aws/credentials")
    assert "AKIA" in read(root / "web-3", "/etc/systemd/system/report.service")  # the rest is untouched
    assert "still found on 1 place(s): web-3" in canary.output
    assert status(iam, "report-writer") == ["Active"]
    # The software on web-1 now calls AWS as the instance's role.
    after = caller_on(fleet, "web-1", sandbox)
    assert ":assumed-role/keyless-report-writer/" + fleet["hosts"]["web-1"]["instance_id"] in after

    rest = retire(sandbox, fleet, "retire-keys-rest", "-vvv", retire_keys_stages=["canary", "rest"])
    assert rest.returncode == 0, rest.output[-6000:]
    assert "UnsetEnvironment=AWS_ACCESS_KEY_ID" in read(
        root / "web-3", "/etc/systemd/system/report.service.d/keyless-aws-no-static-keys.conf")
    # The billing key is used after it left web-2 (something elsewhere still has it).
    billing = keys["billing"]
    boto3.client("sts", endpoint_url=sandbox.url, region_name="us-east-1", aws_access_key_id=billing["AccessKeyId"],
                 aws_secret_access_key=billing["SecretAccessKey"]).get_caller_identity()

    retired = retire(sandbox, fleet, "retire-keys-retire", "-vvv", retire_keys_stages=["retire"])
    assert retired.returncode == 0, retired.output[-6000:]
    assert status(iam, "report-writer") == ["Inactive"] and status(iam, "billing") == ["Active"]
    assert "of billing: keep, now Active (used at" in retired.output and "after it left the instances" in retired.output

    again = retire(sandbox, fleet, "retire-keys-again")
    assert again.returncode == 0, again.output[-6000:]
    assert set(counts(again.output).values()) == {0}
    assert status(iam, "report-writer") == ["Inactive"] and status(iam, "billing") == ["Active"]
    no_secret(fleet, plan.output, canary.output, rest.output, retired.output, again.output)


def test_a_canary_still_using_its_key_stops_the_run_before_the_rest(sandbox, fleet):
    report = fleet["keys"]["report-writer"]
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith("AWS_"))
    env.update(AWS_ACCESS_KEY_ID=report["AccessKeyId"], AWS_SECRET_ACCESS_KEY=report["SecretAccessKey"])
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], env=env)
    try:
        inventory = yaml.safe_load(open(fleet["inventory"]))
        inventory["all"]["children"]["keyless_key_hosts"]["hosts"]["web-1"]["keyless_host_pids"] = [worker.pid]
        with open(fleet["inventory"], "w") as handle:
            yaml.safe_dump(inventory, handle)
        run = retire(sandbox, fleet, "retire-keys-canary-fails")
    finally:
        worker.kill()
        worker.wait()
    assert run.returncode != 0
    assert "web-1 still uses the keys it gave up: programs python" in run.output
    assert "restart it" in run.output
    # The rest is left as it is, and the key is not retired.
    assert "AKIA" in read(fleet["root"] / "web-3", "/etc/systemd/system/report.service")
    assert fleet["keys"]["billing"]["AccessKeyId"] in read(fleet["root"] / "web-2", "/home/app/.aws/credentials")
    assert status(fleet["iam"], "report-writer") == ["Active"]
    no_secret(fleet, run.output)
