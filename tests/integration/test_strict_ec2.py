"""The modules against a sandbox as strict as EC2 (tests/sandbox/rules.py, moto_fixes.py), each
rule met by an ansible-playbook run as a user would make it, every count from the sandbox's
request log:

* a fleet of running and stopped instances swapped: Replace on the running ones (never a
  detach there), detach-then-attach on the stopped ones (EC2 refuses Replace there);
* pending and stopping instances waited for, then converged;
* 250 ids plus a tag filter, every describe call within EC2's 200 filter values;
* each form of "EC2 does not know the profile yet" retried; a profile deleted while the run
  waits ends the wait at once;
* a hop-limit-only change keeping HttpTokens=required;
* the role swapped inside a profile in use: the warning, and the instance serving the old
  role's credentials until rotation;
* an instance launched from a template carrying the profile and IMDSv2 from its first second.
"""

import json
import re
import threading
import time
import urllib.error
import urllib.request

import boto3

from fleet_support import Run, arn, attached
from runner import run_playbook
from sandbox.seed import EC2_TRUST, associate, launch, launch_running, make_profile, wait_until

FILTER_VALUE = re.compile(r"^Filter\.\d+\.Value\.\d+$")


def stop(sandbox, ids, wait=True):
    sandbox.client("ec2").stop_instances(InstanceIds=ids)
    if wait:
        wait_until(sandbox, ids, ("stopped",))


def test_a_fleet_of_running_and_stopped_instances_is_swapped_each_the_way_ec2_allows(sandbox, tmp_path):
    make_profile(sandbox, "web")
    make_profile(sandbox, "web-v2")
    fleet = launch_running(sandbox, 6)
    running, stopped = fleet[:3], fleet[3:]
    Run(sandbox, tmp_path, "mixed-first", instance_ids=fleet, instance_profile="web")
    stop(sandbox, stopped)
    before = attached(sandbox, fleet)

    check = Run(sandbox, tmp_path, "mixed-check", check=True, instance_ids=fleet, instance_profile="web-v2")
    assert check.mutations == []
    swap = Run(sandbox, tmp_path, "mixed-swap", instance_ids=fleet, instance_profile="web-v2")
    assert not swap.result.get("failed"), swap.result.get("msg")
    assert swap.result["summary"] == {"associated": 0, "replaced": 6, "disassociated": 0, "unchanged": 0}
    by_id = dict((e["instance_id"], e) for e in swap.result["associations"])
    for instance_id in running:
        assert by_id[instance_id]["calls"] == ["ReplaceIamInstanceProfileAssociation"]
    for instance_id in stopped:
        assert by_id[instance_id]["calls"] == ["DisassociateIamInstanceProfile", "AssociateIamInstanceProfile"]
    # check mode predicted exactly these calls
    assert [(e["instance_id"], e["action"], e["calls"]) for e in check.result["associations"]] == [
        (e["instance_id"], e["action"], e["calls"]) for e in swap.result["associations"]]
    # from the request log: no detach of a running instance's association, ever
    detached = [c["params"]["AssociationId"] for c in swap.calls if c["action"] == "DisassociateIamInstanceProfile"]
    assert sorted(detached) == sorted(before[i][1] for i in stopped)
    replaced = [c["params"]["AssociationId"] for c in swap.calls
                if c["action"] == "ReplaceIamInstanceProfileAssociation"]
    assert sorted(replaced) == sorted(before[i][1] for i in running)
    assert [c["action"] for c in swap.calls if c["action"] == "AssociateIamInstanceProfile"] == [
        "AssociateIamInstanceProfile"] * 3
    assert set(a for a, _id in attached(sandbox, fleet).values()) == {arn("web-v2")}
    rerun = Run(sandbox, tmp_path, "mixed-rerun", instance_ids=fleet, instance_profile="web-v2")
    assert not rerun.result["changed"] and rerun.mutations == []


def test_pending_and_stopping_instances_are_waited_for_then_converged(sandbox, tmp_path):
    make_profile(sandbox, "web")
    settled = launch_running(sandbox, 1)
    # long enough that ansible-playbook, however slow its start, meets them still on their way
    with sandbox.transitions.configured(pending_seconds=8.0, stopping_seconds=8.0):
        stop(sandbox, settled, wait=False)  # stopping for 8 s
        pending = launch(sandbox, 1)  # pending for 8 s
        states = wait_until(sandbox, settled + pending, ("pending", "stopping"), timeout=1)
        assert sorted(states.values()) == ["pending", "stopping"]
        run = Run(sandbox, tmp_path, "transitional", instance_ids=settled + pending, instance_profile="web")
    assert not run.result.get("failed"), run.result.get("msg")
    assert run.result["summary"]["associated"] == 2
    assert run.mutations == ["AssociateIamInstanceProfile"] * 2
    # the module polled DescribeInstances while they were on their way, and never associated too early
    assert run.actions.count("DescribeInstances") >= 2
    assert not [c for c in run.calls if c["status"] >= 400 and c["action"] == "AssociateIamInstanceProfile"]
    assert wait_until(sandbox, settled + pending) == {settled[0]: "stopped", pending[0]: "running"}


def test_250_ids_and_a_tag_filter_stay_within_200_filter_values_per_call(sandbox, tmp_path):
    make_profile(sandbox, "web")
    ec2 = sandbox.client("ec2")
    fleet = launch_running(sandbox, 250)
    ec2.create_tags(Resources=fleet[::2], Tags=[{"Key": "team", "Value": "web"}])
    run = Run(sandbox, tmp_path, "filter-limit", instance_ids=fleet, filters={"tag:team": "web"},
              instance_profile="web")
    assert not run.result.get("failed"), run.result.get("msg")
    assert run.result["summary"]["associated"] == 125
    describes = [c for c in run.calls if c["action"].startswith("Describe")]
    counts = [len([k for k in c["params"] if FILTER_VALUE.match(k)]) for c in describes]
    assert max(counts) <= 200 and all(c["status"] == 200 for c in describes)
    assert sum(1 for c in describes if c["action"] == "DescribeInstances") >= 2  # split, not refused


def test_the_sandbox_refuses_201_filter_values_as_ec2_does(sandbox):
    """The rule the test above relies on (so it cannot pass because the sandbox is kind)."""
    ec2 = sandbox.client("ec2")
    ids = ["i-{0:017x}".format(n) for n in range(200)]
    try:
        ec2.describe_instances(Filters=[{"Name": "tag:team", "Values": ["web"]},
                                        {"Name": "instance-id", "Values": ids}])
    except ec2.exceptions.ClientError as exc:
        assert exc.response["Error"]["Code"] == "FilterLimitExceeded"
    else:
        raise AssertionError("the sandbox took 201 filter values")


def scripted(sandbox, preset, first):
    sandbox.faults.configure({"scripted": [{"preset": preset, "first": first}]})


def test_every_propagation_form_is_retried_until_ec2_knows_the_profile(sandbox, tmp_path):
    make_profile(sandbox, "web", settled=True)  # the scripted faults play EC2 not knowing it, exactly twice
    fleet = launch_running(sandbox, 3)
    for number, preset in enumerate(("propagation", "no_roles", "identity_profile_not_found")):
        ids = [fleet[number]]
        scripted(sandbox, preset, 2)
        run = Run(sandbox, tmp_path, "form-" + preset, instance_ids=ids, instance_profile="web")
        sandbox.faults.clear()
        assert not run.result.get("failed"), (preset, run.result.get("msg"))
        associates = [c for c in run.calls if c["action"] == "AssociateIamInstanceProfile"]
        assert [c["status"] for c in associates] == [400, 400, 200], preset
        assert run.actions.count("GetInstanceProfile") >= 3  # IAM asked again between the retries


def test_a_profile_deleted_while_the_run_waits_ends_the_wait_at_once(sandbox, tmp_path):
    make_profile(sandbox, "doomed")
    fleet = launch_running(sandbox, 2)
    iam = sandbox.client("iam")
    scripted(sandbox, "propagation", 1000)  # EC2 does not know it, for longer than the run waits

    def delete_soon():
        # once the run is waiting for EC2 (its first attach was refused), the profile is deleted
        deadline = time.monotonic() + 120
        while not sandbox.calls(action="AssociateIamInstanceProfile") and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)
        iam.remove_role_from_instance_profile(InstanceProfileName="doomed", RoleName="doomed")
        iam.delete_instance_profile(InstanceProfileName="doomed")

    deleter = threading.Thread(target=delete_soon)
    deleter.start()
    started = time.monotonic()
    run = Run(sandbox, tmp_path, "deleted-while-waiting", instance_ids=fleet, instance_profile="doomed",
              propagation_timeout=120)
    waited = time.monotonic() - started
    deleter.join()
    sandbox.faults.clear()
    assert run.result.get("failed")
    assert run.result["msg"].startswith("instance profile 'doomed' no longer exists in IAM: it was deleted after "
                                        "this run checked it, while the run waited ")
    assert run.result["msg"].endswith("No instance was changed.")
    assert waited < 60  # far from the 120 s propagation_timeout
    assert run.mutations == ["AssociateIamInstanceProfile"] * len(run.mutations)
    assert set(i for c in run.calls if c["action"] == "AssociateIamInstanceProfile"
               for i in [c["params"]["InstanceId"]]) == {fleet[0]}  # the canary only


def test_a_profile_that_does_not_exist_is_refused_as_ec2_refuses_a_fresh_one(sandbox):
    """The sandbox rule behind the test above: EC2 gives the propagation text, not NoSuchEntity."""
    fleet = launch_running(sandbox, 1)
    ec2 = sandbox.client("ec2")
    try:
        ec2.associate_iam_instance_profile(InstanceId=fleet[0], IamInstanceProfile={"Name": "nowhere"})
    except ec2.exceptions.ClientError as exc:
        assert exc.response["Error"]["Code"] == "InvalidParameterValue"
        assert "Invalid IAM Instance Profile name" in exc.response["Error"]["Message"]
    else:
        raise AssertionError("the sandbox associated a profile that does not exist")


METADATA = """---
- name: One ec2_metadata_options task
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Only the hop limit (http_tokens at its default, which the instance already has)
      keyless.aws.ec2_metadata_options:
        instance_ids: {ids}
        http_put_response_hop_limit: 2
      register: hop
    - name: Keep the result
      ansible.builtin.copy:
        content: "{{{{ hop | to_json }}}}"
        dest: {result}
        mode: "0600"
"""


def test_a_hop_limit_only_change_keeps_http_tokens_required(sandbox, tmp_path):
    ec2 = sandbox.client("ec2")
    reply = ec2.run_instances(ImageId="ami-1e749f67", InstanceType="t3.micro", MinCount=1, MaxCount=1,
                              MetadataOptions={"HttpTokens": "required", "HttpPutResponseHopLimit": 1})
    instance_id = reply["Instances"][0]["InstanceId"]
    wait_until(sandbox, [instance_id], ("running",))
    playbook = tmp_path / "hop.yml"
    result = tmp_path / "hop.json"
    playbook.write_text(METADATA.format(ids=json.dumps([instance_id]), result=json.dumps(str(result))))
    sandbox.app.clear_log()
    run = run_playbook(sandbox, str(playbook), name="strict-hop-limit")
    assert run.returncode == 0, run.output[-3000:]
    modify = [c for c in sandbox.calls() if c["action"] == "ModifyInstanceMetadataOptions"]
    assert len(modify) == 1 and modify[0]["params"].get("HttpTokens") == "required"
    options = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["MetadataOptions"]
    assert options["HttpTokens"] == "required" and options["HttpPutResponseHopLimit"] == 2


def test_the_sandbox_turns_imdsv1_back_on_for_a_call_without_http_tokens(sandbox):
    """The rule behind the test above: an omitted HttpTokens takes the documented default."""
    ec2 = sandbox.client("ec2")
    reply = ec2.run_instances(ImageId="ami-1e749f67", InstanceType="t3.micro", MinCount=1, MaxCount=1,
                              MetadataOptions={"HttpTokens": "required"})
    instance_id = reply["Instances"][0]["InstanceId"]
    wait_until(sandbox, [instance_id], ("running",))
    ec2.modify_instance_metadata_options(InstanceId=instance_id, HttpPutResponseHopLimit=2)
    options = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["MetadataOptions"]
    assert options["HttpTokens"] == "optional"


PROFILE_ROLE = """---
- name: One iam_instance_profile task
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Give the profile another role
      keyless.aws.iam_instance_profile:
        name: web
        role: web-v2
        role_change_in_use: "{mode}"
      register: changed_role
      ignore_errors: true
    - name: Keep the result
      ansible.builtin.copy:
        content: "{{{{ changed_role | to_json }}}}"
        dest: {result}
        mode: "0600"
"""


def change_role(sandbox, tmp_path, mode):
    playbook = tmp_path / ("role-" + mode + ".yml")
    result = tmp_path / ("role-" + mode + ".json")
    playbook.write_text(PROFILE_ROLE.format(mode=mode, result=json.dumps(str(result))))
    sandbox.app.clear_log()
    run = run_playbook(sandbox, str(playbook), name="strict-role-change-" + mode)
    assert run.returncode == 0, run.output[-3000:]
    return json.loads(result.read_text())


def instance_credentials(emulator):
    """(role in the listing, the caller of its credentials) as an application on the instance sees them."""
    session = boto3.session.Session()
    env = emulator.instance_env()
    token_request = urllib.request.Request(emulator.url + "/latest/api/token", method="PUT",
                                           headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
    token = urllib.request.urlopen(token_request, timeout=5).read().decode()

    def get(path):
        request = urllib.request.Request(emulator.url + path, headers={"X-aws-ec2-metadata-token": token})
        return urllib.request.urlopen(request, timeout=5).read().decode()

    role = get("/latest/meta-data/iam/security-credentials/").strip()
    document = json.loads(get("/latest/meta-data/iam/security-credentials/" + role))
    sts = session.client("sts", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                         aws_access_key_id=document["AccessKeyId"], aws_secret_access_key=document["SecretAccessKey"],
                         aws_session_token=document["Token"])
    return role, sts.get_caller_identity()["Arn"]


def test_the_role_swapped_inside_a_profile_in_use_warns_and_reaches_the_instance_at_rotation(sandbox, tmp_path):
    make_profile(sandbox, "web")
    sandbox.client("iam").create_role(RoleName="web-v2", AssumeRolePolicyDocument=EC2_TRUST)
    fleet = launch_running(sandbox, 2)
    for instance_id in fleet:
        associate(sandbox, instance_id, "web")
    emulator = sandbox.imds.start(fleet[0])
    assert instance_credentials(emulator)[0] == "web"

    refused = change_role(sandbox, tmp_path, "fail")
    assert refused.get("failed") and refused["msg"].startswith(
        "role: instance profile 'web' is attached to 2 instance(s) in this region (")
    assert "Nothing was changed (role_change_in_use: fail)" in refused["msg"]
    assert not [c for c in sandbox.calls() if c["action"] in ("RemoveRoleFromInstanceProfile",
                                                              "AddRoleToInstanceProfile")]

    warned = change_role(sandbox, tmp_path, "warn")
    assert warned["changed"] and sorted(warned["instances_in_use"]) == sorted(fleet)
    assert any("changing its role from 'web' to 'web-v2' does not reach them at once" in w
               for w in warned["warnings"])
    # the instance goes on serving the old role's credentials...
    role, caller = instance_credentials(emulator)
    assert role == "web" and ":assumed-role/web/" in caller
    # ...until its next scheduled rotation
    emulator.rotate()
    role, caller = instance_credentials(emulator)
    assert role == "web-v2" and ":assumed-role/web-v2/" in caller


def test_an_instance_launched_from_a_template_carries_its_profile_and_imdsv2_from_its_first_second(sandbox):
    make_profile(sandbox, "web")
    ec2 = sandbox.client("ec2")
    ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={
        "ImageId": "ami-1e749f67", "InstanceType": "t3.micro", "IamInstanceProfile": {"Name": "web"},
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"}})
    for attempt in range(50):  # the careful launch: EC2 may not know the profile for a moment
        try:
            reply = ec2.run_instances(LaunchTemplate={"LaunchTemplateName": "web"}, MinCount=1, MaxCount=1)
            break
        except ec2.exceptions.ClientError as exc:
            assert exc.response["Error"]["Code"] == "InvalidParameterValue", exc
            time.sleep(0.1)
    else:
        raise AssertionError("the launch never succeeded")
    instance = reply["Instances"][0]
    assert instance["State"]["Name"] == "pending"
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    associations = ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance["InstanceId"]]}])["IamInstanceProfileAssociations"]
    assert [a["IamInstanceProfile"]["Arn"] for a in associations] == [arn("web")]
    wait_until(sandbox, [instance["InstanceId"]], ("running",))
    emulator = sandbox.imds.start(instance["InstanceId"])
    try:
        urllib.request.urlopen(emulator.url + "/latest/meta-data/iam/security-credentials/", timeout=5)
    except urllib.error.HTTPError as exc:
        assert exc.code == 401  # IMDSv1 refused from the start
    else:
        raise AssertionError("IMDSv1 answered")
    assert instance_credentials(emulator)[0] == "web"


def test_the_sandbox_refuses_replace_on_a_stopped_instance_and_associate_on_a_pending_one(sandbox):
    """The rules behind the first two tests, as a careless client meets them."""
    make_profile(sandbox, "web")
    make_profile(sandbox, "web-v2")
    ec2 = sandbox.client("ec2")
    fleet = launch_running(sandbox, 1)
    association = associate(sandbox, fleet[0], "web")["IamInstanceProfileAssociation"]
    wait_until(sandbox, fleet, ("running",))
    stop(sandbox, fleet)
    time.sleep(1.1)  # past the propagation window of the fresh profile web-v2
    try:
        ec2.replace_iam_instance_profile_association(AssociationId=association["AssociationId"],
                                                     IamInstanceProfile={"Name": "web-v2"})
    except ec2.exceptions.ClientError as exc:
        assert exc.response["Error"]["Code"] == "IncorrectState"
        assert exc.response["Error"]["Message"] == "The association {0} is not the active association".format(
            association["AssociationId"])
    else:
        raise AssertionError("the sandbox replaced the association of a stopped instance")
    with sandbox.transitions.configured(pending_seconds=5.0):
        pending = launch(sandbox, 1)
        try:
            ec2.associate_iam_instance_profile(InstanceId=pending[0], IamInstanceProfile={"Name": "web"})
        except ec2.exceptions.ClientError as exc:
            assert exc.response["Error"]["Code"] == "IncorrectInstanceState"
        else:
            raise AssertionError("the sandbox associated a pending instance")
