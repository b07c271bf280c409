"""keyless.aws.credential_sources_info through ansible-playbook, at -vvv, in check mode and not.

A legacy host stood up in a folder (a user's credentials file, a service whose drop-in exports a
key, user data that wrote one) and a real process with a key in its environment: the module names
every key by kind and last four characters, says which source each program, user and service
takes, changes nothing, and no secret nor whole key id reaches the output, the result or the log.
"""

import json
import os
import subprocess
import sys

import pytest

from reliability_support import run_with_vars
from runner import ROOT

PLAYBOOK = os.path.join(ROOT, "tests", "integration", "playbooks", "credential_sources", "credential_sources.yml")
KEYS = {"file": "AKIAZXCVBNMLKJHGFD3B", "service": "AKIAQWERTYUIOPASDF2A", "user_data": "AKIAPOIUYTREWQLKJH4C",
        "process": "AKIAMNBVCXZLKJHGFD5D"}
SECRETS = {name: "keylessHostSecretDoNotPrint{0:0>13}".format(name) for name in KEYS}


def write(root, path, text):
    real = os.path.join(str(root), path.lstrip("/"))
    os.makedirs(os.path.dirname(real), exist_ok=True)
    with open(real, "w") as handle:
        handle.write(text)


@pytest.fixture
def legacy_host(tmp_path):
    root = tmp_path / "host"
    write(root, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\napp:x:1001:1001::/home/app:/bin/bash\n")
    os.makedirs(str(root / "root"))
    credentials = "[other]\nregion = eu-west-1\n[default]\naws_access_key_id = {0}\naws_secret_access_key = {1}\n"
    write(root, "/home/app/.aws/credentials", credentials.format(KEYS["file"], SECRETS["file"]))
    write(root, "/etc/systemd/system/report.service", "[Service]\nUser=app\nExecStart=/usr/bin/python3 /opt/r.py\n")
    write(root, "/etc/systemd/system/report.service.d/keys.conf",
          "[Service]\nEnvironment=AWS_ACCESS_KEY_ID={0} AWS_SECRET_ACCESS_KEY={1}\n".format(
              KEYS["service"], SECRETS["service"]))
    user_data = "#!/bin/sh\nexport AWS_ACCESS_KEY_ID={0}\nexport AWS_SECRET_ACCESS_KEY={1}\n".format(
        KEYS["user_data"], SECRETS["user_data"])
    write(root, "/var/lib/cloud/instance/user-data.txt", user_data)
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith("AWS_"))
    env.update(AWS_ACCESS_KEY_ID=KEYS["process"], AWS_SECRET_ACCESS_KEY=SECRETS["process"])
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], env=env)
    yield {"root": str(root), "pids": [process.pid]}
    process.kill()
    process.wait()


@pytest.mark.parametrize("mode", [[], ["--check"]], ids=["real", "check"])
def test_the_module_finds_every_key_and_prints_none(sandbox, tmp_path, legacy_host, mode):
    before = sorted(os.walk(legacy_host["root"]))
    run, result = run_with_vars(sandbox, PLAYBOOK, tmp_path, "credential-sources-" + (mode[0][2:] if mode else "real"),
                                legacy_host, "-vvv", *mode)
    assert run.returncode == 0, run.output[-5000:]
    assert result["changed"] is False and result["keyless"] is False and result["complete"] is True
    assert sorted(key["suffix"] for key in result["keys"]) == sorted(key[-4:] for key in KEYS.values())
    assert [(u["user"], u["method"], u["evidence"].get("line")) for u in result["users"]] == [
        ("root", "iam-role", None), ("app", "shared-credentials-file", 4)]
    assert [(s["unit"], s["method"], s["key"]["suffix"]) for s in result["services"]] == [
        ("report.service", "env", KEYS["service"][-4:])]
    assert [(p["pid"], p["method"], p["key"]["suffix"]) for p in result["programs"]] == [
        (legacy_host["pids"][0], "env", KEYS["process"][-4:])]
    assert [(d["line"], d["key"]["suffix"]) for d in result["user_data"]] == [(2, KEYS["user_data"][-4:])]
    assert "4 keys found on this host" in result["msg"]
    for text in (run.output, json.dumps(result)):
        for value in list(KEYS.values()) + list(SECRETS.values()):
            assert value not in text
    assert sorted(os.walk(legacy_host["root"])) == before  # nothing changed on the host
