"""The role converges against a plain ``moto_server`` (no sandbox rules), and a second run changes nothing.

Many users try a playbook against moto before an account. A plain moto_server answers
differently from EC2 in one way the role meets: ModifyInstanceMetadataOptions drops an omitted
``HttpEndpoint`` (real EC2 keeps it; TOOLCHAIN.md). ec2_metadata_options sends every option the
task names, so the read-back agrees, and it waits only while EC2 says ``pending``: the old module
waited 300 seconds for a field that never came back, then failed.
"""

import os
import socket
import subprocess
import time
import urllib.request

import boto3
import pytest

from reliability_support import recap
from reliability_support import run_with_vars
from runner import BIN
from runner import ROOT
from sandbox import Sandbox

PLAYBOOK = os.path.join(ROOT, "tests", "integration", "playbooks", "plain_moto", "plain_moto.yml")


class PlainMoto:
    """A moto_server process on loopback, with the environment run_playbook gives a playbook
    (the sandbox's: its fake keys, no IMDS, no config files; this server's URL)."""

    ACCESS_KEY, SECRET_KEY, REGION = Sandbox.ACCESS_KEY, Sandbox.SECRET_KEY, Sandbox.REGION
    env = Sandbox.env

    def __init__(self):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = "http://127.0.0.1:{0}".format(self.port)
        self.process = subprocess.Popen([os.path.join(BIN, "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.url + "/moto-api/", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("moto_server did not start on " + self.url)
                time.sleep(0.1)

    def client(self, service):
        return boto3.client(service, endpoint_url=self.url, region_name=self.REGION,
                            aws_access_key_id=self.ACCESS_KEY, aws_secret_access_key=self.SECRET_KEY)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def plain_moto():
    server = PlainMoto()
    yield server
    server.stop()


def test_the_role_converges_on_a_plain_moto_server_and_a_second_run_changes_nothing(plain_moto, tmp_path):
    ec2 = plain_moto.client("ec2")
    reservation = ec2.run_instances(ImageId="ami-12345678", InstanceType="t3.micro", MinCount=2, MaxCount=2)
    ids = sorted(i["InstanceId"] for i in reservation["Instances"])
    variables = {"instance_ids": ids}

    started = time.monotonic()
    first, result = run_with_vars(plain_moto, PLAYBOOK, tmp_path, "plain-moto-first", variables)
    assert first.returncode == 0, first.output[-5000:]
    assert time.monotonic() - started < 200, "the run waited: it should fail at once or converge"
    assert set(result["instances"].values()) - {"unchanged"}, result["instances"]
    for instance in ec2.describe_instances(InstanceIds=ids)["Reservations"][0]["Instances"]:
        assert instance["MetadataOptions"]["HttpTokens"] == "required"
        assert instance["MetadataOptions"]["HttpEndpoint"] == "enabled"

    again, result = run_with_vars(plain_moto, PLAYBOOK, tmp_path, "plain-moto-again", variables)
    assert again.returncode == 0, again.output[-5000:]
    assert set(result["instances"].values()) == {"unchanged"}, result["instances"]
    assert recap(again.output)[1] <= 1, again.output[-5000:]  # at most the task that writes the results file
