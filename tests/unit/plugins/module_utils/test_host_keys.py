"""keyless.aws host_keys: a whole host's keys and every program's source, from a host in a folder.

The host is a directory tree (users, their files, units, user data); its processes are real ones,
started here with keys in their environment, and read through the real /proc (``pids`` picks them).
"""

import json
import os
import subprocess
import sys

import pytest

from ansible_collections.keyless.aws.plugins.module_utils import host_keys

SERVICE_KEY = "AKIAQWERTYUIOPASDF2A"
FILE_KEY = "AKIAZXCVBNMLKJHGFD3B"
USER_DATA_KEY = "AKIAPOIUYTREWQLKJH4C"
PROCESS_KEY = "AKIAMNBVCXZLKJHGFD5D"
AMAZON_AWS_KEY = "AKIAASDFGHJKLQWERT6E"
SECRETS = ["wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY{0}".format(n) for n in range(5)]
ALL_KEYS = [SERVICE_KEY, FILE_KEY, USER_DATA_KEY, PROCESS_KEY, AMAZON_AWS_KEY]


def write(root, path, text, mode=None):
    real = os.path.join(str(root), path.lstrip("/"))
    os.makedirs(os.path.dirname(real), exist_ok=True)
    with open(real, "w") as handle:
        handle.write(text)
    if mode:
        os.chmod(real, mode)


@pytest.fixture
def legacy_host(tmp_path):
    """An old instance: a user with a credentials file, a service whose drop-in exports a key, and
    user data that wrote a key."""
    write(tmp_path, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n"
                                   "app:x:{0}:{0}::/home/app:/bin/bash\n"
                                   "nobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n".format(os.getuid() + 1000))
    write(tmp_path, "/etc/group", "root:x:0:\napp:x:{0}:\n".format(os.getuid() + 1000))
    os.makedirs(str(tmp_path / "root"))
    write(tmp_path, "/home/app/.aws/credentials",
          "[default]\naws_access_key_id = {0}\naws_secret_access_key = {1}\n".format(FILE_KEY, SECRETS[0]))
    write(tmp_path, "/home/app/.aws/config", "[default]\nregion = eu-west-1\n")
    write(tmp_path, "/etc/systemd/system/report.service",
          "[Unit]\nDescription=Nightly report\n[Service]\nUser=app\nExecStart=/usr/bin/python3 /opt/report.py\n")
    write(tmp_path, "/etc/systemd/system/report.service.d/aws.conf",
          "[Service]\nEnvironment=\"AWS_ACCESS_KEY_ID={0}\" \"AWS_SECRET_ACCESS_KEY={1}\"\n".format(
              SERVICE_KEY, SECRETS[1]))
    write(tmp_path, "/etc/systemd/system/web.service",
          "[Service]\nEnvironmentFile=-/etc/default/web\nExecStart=/usr/bin/web\n")
    write(tmp_path, "/etc/default/web", "AWS_REGION=eu-west-1\nAWS_EC2_METADATA_DISABLED=false\n")
    write(tmp_path, "/etc/systemd/system/plain.service", "[Service]\nExecStart=/usr/bin/true\n")
    write(tmp_path, "/var/lib/cloud/instance/user-data.txt",
          "#!/bin/bash\ncat > /etc/app.env <<EOF\nAWS_ACCESS_KEY_ID={0}\nAWS_SECRET_ACCESS_KEY={1}\nEOF\n".format(
              USER_DATA_KEY, SECRETS[2]))
    return tmp_path


@pytest.fixture
def keyed_processes():
    """Two real processes: a Python one with a key in its environment, one with amazon.aws's variable."""
    started = []
    base = dict((k, v) for k, v in os.environ.items() if not k.startswith("AWS_"))
    for extra in ({"AWS_ACCESS_KEY_ID": PROCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRETS[3]},
                  {"AWS_ACCESS_KEY": AMAZON_AWS_KEY, "AWS_SECRET_KEY": SECRETS[4]}):
        started.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                                        env=dict(base, **extra)))
    yield [process.pid for process in started]
    for process in started:
        process.kill()
        process.wait()


def test_a_legacy_host_shows_every_key_and_who_uses_it(legacy_host, keyed_processes):
    result = host_keys.scan(root=str(legacy_host), pids=keyed_processes)
    assert result["keyless"] is False and result["complete"] is True

    users = dict((u["user"], u) for u in result["users"])
    assert sorted(users) == ["app", "root"]
    assert users["app"]["method"] == "shared-credentials-file" and users["app"]["key"]["suffix"] == FILE_KEY[-4:]
    assert users["app"]["evidence"] == {"file": "/home/app/.aws/credentials", "line": 2, "profile": "default"}
    assert users["root"]["method"] == "iam-role"

    services = dict((s["unit"], s) for s in result["services"])
    assert sorted(services) == ["report.service", "web.service"]  # plain.service sets no AWS variable
    report = services["report.service"]
    assert (report["method"], report["user"], report["key"]["suffix"]) == ("env", "app", SERVICE_KEY[-4:])
    assert report["evidence"] == {"variable": "AWS_ACCESS_KEY_ID", "file": "/etc/systemd/system/report.service.d/aws.conf",
                                  "line": 2}
    # The service's own environment comes first; the user's credentials file is not reached.
    assert services["web.service"]["method"] == "iam-role"

    programs = dict((p["pid"], p) for p in result["programs"])
    first, second = keyed_processes
    assert programs[first]["method"] == "env" and programs[first]["static_key"]
    assert programs[first]["command"] == os.path.basename(sys.executable) and "sdk_note" not in programs[first]
    assert programs[second]["method"] != "env" and programs[second]["amazon_aws"]["key"]["suffix"] == AMAZON_AWS_KEY[-4:]

    assert [(d["file"], d["line"], d["key"]["suffix"]) for d in result["user_data"]] == [
        ("/var/lib/cloud/instance/user-data.txt", 3, USER_DATA_KEY[-4:])]

    by_suffix = dict((k["suffix"], k) for k in result["keys"])
    assert sorted(by_suffix) == sorted(key[-4:] for key in ALL_KEYS)
    assert {"file": "/home/app/.aws/credentials", "line": 2} in by_suffix[FILE_KEY[-4:]]["places"]
    assert {"pid": first, "command": programs[first]["command"], "variable": "AWS_ACCESS_KEY_ID"} in \
        by_suffix[PROCESS_KEY[-4:]]["places"]

    text = json.dumps(result) + host_keys.summary(result)
    for secret in SECRETS + ALL_KEYS:
        assert secret not in text


def test_a_host_with_nothing_says_so_plainly(tmp_path):
    write(tmp_path, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n")
    os.makedirs(str(tmp_path / "root"))
    result = host_keys.scan(root=str(tmp_path), processes=False)
    assert result["keyless"] is True and result["complete"] is True
    assert [u["method"] for u in result["users"]] == ["iam-role"]
    assert host_keys.summary(result).startswith("no static AWS key on this host")


def test_unreadable_places_are_listed_never_skipped(tmp_path, monkeypatch):
    """A file this process may not read (no become) is listed, and the host is not called complete."""
    from ansible_collections.keyless.aws.plugins.module_utils import credential_chain

    write(tmp_path, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n")
    write(tmp_path, "/etc/boto.cfg", "[Credentials]\n")
    os.makedirs(str(tmp_path / "root"))
    refused = str(tmp_path / "etc" / "boto.cfg")

    def guarded_open(path, *args, **kwargs):
        if path == refused:
            raise PermissionError(13, "Permission denied", path)
        return open(path, *args, **kwargs)

    monkeypatch.setattr(credential_chain, "open", guarded_open, raising=False)
    result = host_keys.scan(root=str(tmp_path), processes=False)
    assert result["unreadable"] == ["/etc/boto.cfg"] and result["complete"] is False
    assert "could not be read" in host_keys.summary(result)


def test_env_assignments_read_etc_environment_and_env_files():
    text = "# comment\nPATH=/usr/bin\nexport AWS_PROFILE='ops'\nAWS_REGION=\"eu-west-1\"\nnot an assignment\n"
    assert host_keys.env_assignments(text) == [("PATH", "/usr/bin", 2), ("AWS_PROFILE", "ops", 3),
                                               ("AWS_REGION", "eu-west-1", 4)]
