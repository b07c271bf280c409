"""key_removal.py: only the lines that hold a named key leave the host, kept recoverable; a second
run changes nothing; the scan then finds every program on the role."""

import json
import os

import pytest

from ansible_collections.keyless.aws.plugins.module_utils import host_keys
from ansible_collections.keyless.aws.plugins.module_utils import key_removal
from ansible_collections.keyless.aws.plugins.module_utils.credential_chain import fingerprint

OLD = "AKIAZXCVBNMLKJHGFD3B"
SERVICE = "AKIAQWERTYUIOPASDF2A"
KEEP = "AKIAPOIUYTREWQLKJH4C"
SECRETS = ["wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY{0}".format(n) for n in range(3)]


def write(root, path, text, mode=0o644):
    real = os.path.join(str(root), path.lstrip("/"))
    os.makedirs(os.path.dirname(real), exist_ok=True)
    with open(real, "w") as handle:
        handle.write(text)
    os.chmod(real, mode)


def read(root, path):
    with open(os.path.join(str(root), path.lstrip("/"))) as handle:
        return handle.read()


CREDENTIALS = ("[default]\nregion = eu-west-1\naws_access_key_id = {0}\naws_secret_access_key = {1}\noutput = json\n"
               "[other]\naws_access_key_id = {2}\naws_secret_access_key = {3}\n").format(OLD, SECRETS[0], KEEP, SECRETS[2])
UNIT_DROP_IN = "[Service]\nEnvironment=AWS_REGION=eu-west-1 AWS_ACCESS_KEY_ID={0} AWS_SECRET_ACCESS_KEY={1}\n".format(
    SERVICE, SECRETS[1])


@pytest.fixture
def host(tmp_path):
    write(tmp_path, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\napp:x:1001:1001::/home/app:/bin/bash\n")
    os.makedirs(str(tmp_path / "root"))
    write(tmp_path, "/home/app/.aws/credentials", CREDENTIALS, mode=0o600)
    write(tmp_path, "/etc/systemd/system/report.service", "[Service]\nUser=app\nExecStart=/usr/bin/python3 /r.py\n")
    write(tmp_path, "/etc/systemd/system/report.service.d/keys.conf", UNIT_DROP_IN)
    write(tmp_path, "/etc/environment", "PATH=/usr/bin\nAWS_ACCESS_KEY_ID={0}\nAWS_SECRET_ACCESS_KEY={1}\n".format(
        OLD, SECRETS[0]))
    write(tmp_path, "/var/lib/cloud/instance/user-data.txt", "#!/bin/sh\nexport AWS_ACCESS_KEY_ID={0}\n".format(OLD))
    return tmp_path


def run(root, fingerprints, check_mode=False):
    return key_removal.remove_keys(str(root), "/proc", fingerprints, check_mode, pids=[os.getpid()])


def test_check_mode_says_what_would_go_and_changes_nothing(host):
    before = {path: read(host, path) for path in ("/home/app/.aws/credentials", "/etc/environment")}
    result = run(host, [fingerprint(OLD), fingerprint(SERVICE)], check_mode=True)
    assert result["changed"] is True
    assert [(r["file"], r["lines"]) for r in result["removed"]] == [
        ("/etc/environment", [2, 3]), ("/etc/systemd/system/report.service.d/keys.conf", [2]),
        ("/home/app/.aws/credentials", [3, 4])]
    assert result["drop_ins"] == [{"unit": "report.service",
                                   "file": "/etc/systemd/system/report.service.d/" + key_removal.DROP_IN}]
    assert {path: read(host, path) for path in before} == before
    assert not os.path.exists(str(host / "var/lib/keyless-aws"))
    text = json.dumps(result)
    for value in [OLD, SERVICE] + SECRETS:
        assert value not in text


def test_only_the_named_keys_lines_go_kept_recoverable_and_a_rerun_changes_nothing(host):
    result = run(host, [fingerprint(OLD), fingerprint(SERVICE)])
    assert result["changed"] is True and result["not_found"] == []
    # The other profile, the region and the output stay; the default profile keeps its section.
    assert read(host, "/home/app/.aws/credentials") == (
        "[default]\nregion = eu-west-1\noutput = json\n[other]\naws_access_key_id = {0}\naws_secret_access_key = {1}\n"
        .format(KEEP, SECRETS[2]))
    assert oct(os.stat(str(host / "home/app/.aws/credentials")).st_mode & 0o777) == "0o600"
    assert read(host, "/etc/environment") == "PATH=/usr/bin\n"
    # On the unit's Environment= line only the key variables' words go; the drop-in unsets them too.
    assert read(host, "/etc/systemd/system/report.service.d/keys.conf") == "[Service]\nEnvironment=AWS_REGION=eu-west-1\n"
    assert "UnsetEnvironment=AWS_ACCESS_KEY_ID" in read(host, "/etc/systemd/system/report.service.d/" +
                                                        key_removal.DROP_IN)
    # The user data is not ours to change: said, not silently skipped.
    assert [entry["file"] for entry in result["left"]] == ["/var/lib/cloud/instance/user-data.txt"]
    # What was removed is kept, root-only, whole (it is the way back until the key is retired).
    backup = str(host / "var/lib/keyless-aws/removed-keys" / (fingerprint(OLD) + ".json"))
    assert oct(os.stat(backup).st_mode & 0o777) == "0o600"
    assert oct(os.stat(os.path.dirname(backup)).st_mode & 0o777) == "0o700"
    saved = json.loads(read(host, "/var/lib/keyless-aws/removed-keys/" + fingerprint(OLD) + ".json"))
    assert {"file": "/home/app/.aws/credentials", "removed": [
        {"line": 3, "text": "aws_access_key_id = " + OLD}, {"line": 4, "text": "aws_secret_access_key = " + SECRETS[0]}]} \
        in [{name: entry[name] for name in ("file", "removed")} for entry in saved]
    # Each saved entry says when; the result gives each key's removal time from its backup file.
    removed_at = {entry["removed_at"] for entry in saved}
    assert len(removed_at) == 1 and result["removed_at"][fingerprint(OLD)] == removed_at.pop()
    assert sorted(result["removed_at"]) == sorted(fingerprint(key) for key in (OLD, SERVICE))
    assert result["backups"] == sorted("/var/lib/keyless-aws/removed-keys/{0}.json".format(fingerprint(key))
                                       for key in (OLD, SERVICE))
    text = json.dumps(result)
    for value in [OLD, SERVICE] + SECRETS:
        assert value not in text

    again = run(host, [fingerprint(OLD), fingerprint(SERVICE)])
    assert again["changed"] is False and again["removed"] == [] and again["drop_ins"] == []
    # A re-run that removes nothing still says when the keys went (the soak counts from then).
    assert again["removed_at"] == result["removed_at"]
    # A check-mode run naming no key reads just that: every key the host gave up, and when.
    read_only = run(host, [], check_mode=True)
    assert read_only["changed"] is False and read_only["removed_at"] == result["removed_at"]

    # The scan now finds the user and the service on the role; only the user data and the kept key remain.
    scanned = host_keys.scan(root=str(host), processes=False)
    assert [(u["user"], u["method"]) for u in scanned["users"]] == [("root", "iam-role"), ("app", "iam-role")]
    assert [(s["unit"], s["method"]) for s in scanned["services"]] == [("report.service", "iam-role")]
    assert sorted(k["suffix"] for k in scanned["keys"]) == sorted([OLD[-4:], KEEP[-4:]])


def test_a_key_not_on_the_host_changes_nothing(host):
    result = run(host, [fingerprint("AKIAAAAAAAAAAAAAAAAA")])
    assert result["changed"] is False and result["not_found"] == [fingerprint("AKIAAAAAAAAAAAAAAAAA")]


@pytest.mark.parametrize("text,edits", [
    ("[default]\naws_access_key_id = {0}\nregion = x\naws_secret_access_key = s\n[b]\naws_secret_access_key = t\n",
     {1: None, 3: None}),
    ("export AWS_ACCESS_KEY_ID={0}\nexport AWS_SECRET_ACCESS_KEY=s\nexport PATH=/bin\n", {0: None, 1: None}),
    ("AWSAccessKeyId={0}\nAWSSecretKey=s\n", {0: None, 1: None}),
    ("Environment=\"AWS_ACCESS_KEY_ID={0}\" AWS_SECRET_ACCESS_KEY=s\n", {0: None}),
    ("Environment=A=1 AWS_ACCESS_KEY_ID={0}\n", {0: "Environment=A=1"}),
    ("some tool --key {0}\n", {0: None}),
    ("aws_access_key_id = {1}\n", {}),  # another key: left alone
])
def test_line_edits(text, edits):
    assert key_removal.line_edits(text.format(OLD, KEEP), {fingerprint(OLD)}) == edits


def test_a_run_that_may_not_change_a_file_changes_nothing_and_says_become(host, monkeypatch):
    """Without become, a file to edit is not ours: refused before any change (not half the host)."""
    from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError

    refused = str(host / "home/app/.aws/credentials")
    real_access = os.access
    monkeypatch.setattr(key_removal.os, "access", lambda path, mode: path != refused and real_access(path, mode))
    before = read(host, "/etc/environment")
    with pytest.raises(KeylessError) as error:
        run(host, [fingerprint(OLD)])
    assert "/home/app/.aws/credentials" in error.value.message and "become=true" in error.value.message
    assert "Nothing was changed" in error.value.message
    assert read(host, "/etc/environment") == before
    assert not os.path.exists(str(host / "var/lib/keyless-aws"))
