"""keyless.aws.imds_credentials against the sandbox's IMDS emulators, every path.

One emulator per simulated instance, started in this process (``sandbox.imds``); the module
runs in ansible-playbook (tests/integration/playbooks/imds_credentials_cases/cases.yml) and
reaches them on loopback. Associations that must change right before the module looks are
changed here, before the playbook starts: an emulator counts its propagation delay from the
first request that sees the change.
"""

import json
import os

from runner import ROOT, run_playbook
from sandbox.seed import run_instances

CASES = os.path.join(ROOT, "tests", "integration", "playbooks", "imds_credentials_cases", "cases.yml")


def trust(service):
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]})


def make_profile(iam, name, service="ec2.amazonaws.com"):
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust(service))["Role"]
    profile = iam.create_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
    return role, profile


def launch(sandbox, ec2, profile=None, **options):
    """A running instance (pending for a moment, as on EC2), with the profile and options given."""
    kwargs = {"ImageId": "ami-12345678"}
    if profile:
        kwargs["IamInstanceProfile"] = {"Name": profile}
    instance_id = run_instances(sandbox, **kwargs)[0]["InstanceId"]
    if options:
        ec2.modify_instance_metadata_options(InstanceId=instance_id, **options)
    return instance_id


def association_of(ec2, instance_id):
    return ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}])["IamInstanceProfileAssociations"][0]


def test_every_path(sandbox, tmp_path):
    iam, ec2 = sandbox.client("iam"), sandbox.client("ec2")
    web_role, web_profile = make_profile(iam, "web-app")
    make_profile(iam, "batch")
    make_profile(iam, "lambda-only", service="lambda.amazonaws.com")
    # EC2 knows them already (as minutes after they were made): this test is about the metadata
    # service; the propagation window has tests of its own (test_strict_ec2.py).
    sandbox.rules.settle()
    instances = {
        "web": launch(sandbox, ec2, "web-app", HttpTokens="required"),
        "optional": launch(sandbox, ec2, "web-app"),
        "bare": launch(sandbox, ec2),
        "untrusted": launch(sandbox, ec2, "lambda-only", HttpTokens="required"),
        "v1only": launch(sandbox, ec2, "web-app"),
        "container": launch(sandbox, ec2, "web-app", HttpTokens="required"),
        "late": launch(sandbox, ec2, HttpTokens="required"),
        "swap": launch(sandbox, ec2, "batch", HttpTokens="required"),
        "disabled": launch(sandbox, ec2, "web-app", HttpEndpoint="disabled"),
    }
    options = {"v1only": {"v1_only": True}, "container": {"hops": 2}, "late": {"propagation_delay": 3},
               "swap": {"propagation_delay": 3}}
    emulators = {name: sandbox.imds.start(instance_id, **options.get(name, {}))
                 for name, instance_id in instances.items()}
    try:
        # The emulators saw the instances as launched; now the associations change.
        ec2.associate_iam_instance_profile(InstanceId=instances["late"], IamInstanceProfile={"Name": "web-app"})
        ec2.replace_iam_instance_profile_association(
            AssociationId=association_of(ec2, instances["swap"])["AssociationId"],
            IamInstanceProfile={"Name": "web-app"})

        variables = tmp_path / "vars.json"
        variables.write_text(json.dumps({
            "imds": {name: emulator.url for name, emulator in emulators.items()},
            "instances": instances,
            "web_role_arn": web_role["Arn"],
            "web_profile_arn": web_profile["Arn"],
        }))
        run = run_playbook(sandbox, CASES, "-v", "-e", "@" + str(variables), name="imds_credentials_cases")
        assert run.returncode == 0, "imds_credentials cases failed (full log: {0}):\n{1}".format(
            run.log_path, run.output[-8000:])

        # Nothing secret anywhere in the output, even at -v.
        secrets = []
        for emulator in emulators.values():
            for minted in emulator._credentials.values():  # pylint: disable=protected-access
                secrets += [minted["secret_access_key"], minted["token"], minted["access_key_id"]]
        assert secrets, "the emulators minted no credentials"
        leaked = [secret[:6] + "..." for secret in secrets if secret in run.output]
        assert not leaked, "secrets in the playbook output: {0}".format(leaked)

        # Every run asked for an IMDSv2 session token first.
        for name, emulator in emulators.items():
            if name != "disabled":
                assert emulator.requests[0]["method"] == "PUT", name
        # The untrusted role never got credentials.
        assert not emulators["untrusted"]._credentials  # pylint: disable=protected-access
    finally:
        sandbox.imds.stop_all()
