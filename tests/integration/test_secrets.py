"""Nothing secret is ever printed or logged.

* Every module (playbooks/reliability/modules.yml, which also fetches role credentials on an
  instance and checks them with STS) and the role end to end (role.yml, then its teardown) run at
  ``-vvv``; their output, their result files, the sandbox's request log and the IMDS emulators'
  logs are scanned for the sandbox's secret access key, the secret keys and session tokens the
  sandbox minted (the IMDS emulators know what they minted, moto's IAM and STS what they issued),
  and a secret planted in a launch template's user data: none may appear.
* Every log the tests wrote (tests/output/**) is scanned for the sandbox's secret key and for
  anything shaped like a session token moto mints.
* Trust policies with a wildcard principal are refused (the ec2_trust_policy filter here, the role
  in bad_inputs.yml); user data holding key-shaped strings is reported by ec2_metadata_options,
  with the line, never the key.
"""

import base64
import glob
import json
import os

import pytest

from ansible_collections.keyless.aws.plugins.module_utils.credential_chain import describe_key
from reliability_support import OUTPUT
from reliability_support import ROOT
from reliability_support import record_figures
from reliability_support import run_with_vars
from sandbox import Sandbox
from test_faults_converge import MODULES
from test_faults_converge import ROLE
from test_faults_converge import RoleWorld
from test_faults_converge import World

TEARDOWN = os.path.join(ROOT, "tests", "integration", "playbooks", "reliability", "teardown.yml")
# moto's session tokens all start so (moto/sts/utils.py): a token in a log is found even when the
# test that leaked it is long gone.
MOTO_SESSION_TOKEN_PREFIX = "FQoGZXIvYXdzEBYaD"
PLANTED_KEY_ID = "AKIAKEYLESSPLANTED01"
PLANTED_SECRET = "keylessUserDataSecretDoNotPrint000000001"
LEAKY_USER_DATA = base64.b64encode((
    "#!/bin/sh\n"
    "export AWS_ACCESS_KEY_ID={0}\n"
    "export AWS_SECRET_ACCESS_KEY={1}\n"
    "exec /opt/web/start\n").format(PLANTED_KEY_ID, PLANTED_SECRET).encode()).decode()


def issued_secrets(sandbox):
    """Every secret the sandbox knows of: its own key, and what its IAM, STS and IMDS emulators issued."""
    secrets = {"sandbox secret access key": {Sandbox.SECRET_KEY}, "imds": set(), "iam": set(), "sts": set()}
    for emulator in sandbox.imds:
        for credentials in emulator._credentials.values():  # pylint: disable=protected-access
            secrets["imds"].update((credentials["secret_access_key"], credentials["token"]))
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    for _account, backends in iam_backends.items():
        for _partition, backend in backends.items():
            secrets["iam"].update(key.secret_access_key for key in backend.access_keys.values())
    for _account, backends in sts_backends.items():
        for _partition, backend in backends.items():
            for role in backend.assumed_roles:
                secrets["sts"].update((role.secret_access_key, role.session_token))
    return secrets


def leaks(texts, secrets):
    """[(where, what)] for each secret found in a text."""
    found = []
    for where, text in texts.items():
        for what, values in secrets.items():
            for value in values:
                if value and len(value) >= 16 and value in text:
                    found.append((where, what))
    return found


@pytest.mark.slow
def test_nothing_secret_in_vvv_output_results_or_logs(sandbox, tmp_path):
    world = World(sandbox, user_data=LEAKY_USER_DATA)
    texts = {}
    first, results = run_with_vars(sandbox, MODULES, tmp_path, "secrets-modules-vvv", world.variables, "-vvv")
    assert first.returncode == 0, first.output[-5000:]
    assert results["credentials"]["assumed_role_arn"].endswith(":assumed-role/fleet/" + world.fresh[0])
    # The planted key is reported, by version and line, and never echoed.
    findings = results["hardened"]["user_data_findings"]
    assert [(f["launch_template_name"], f["version"]) for f in findings] == [("web", 1)]
    assert findings[0]["findings"] == [{"kind": "access_key_id", "line": 2, "key": describe_key(PLANTED_KEY_ID)},
                                       {"kind": "secret_access_key", "line": 3}]
    assert findings[0]["findings"][0]["key"]["suffix"] == PLANTED_KEY_ID[-4:]
    assert "user data holds what looks like" in first.output

    role_world = RoleWorld(sandbox)
    role, _result = run_with_vars(sandbox, ROLE, tmp_path, "secrets-role-vvv", role_world.variables, "-vvv")
    assert role.returncode == 0, role.output[-5000:]
    teardown, _result = run_with_vars(sandbox, TEARDOWN, tmp_path, "secrets-teardown-vvv",
                                      role_world.variables, "-vvv")
    assert teardown.returncode == 0, teardown.output[-5000:]

    secrets = issued_secrets(sandbox)
    secrets["planted in user data"] = {PLANTED_SECRET, PLANTED_KEY_ID}
    assert secrets["imds"] and secrets["sts"], "the runs minted no credentials: the scan would prove nothing"
    for run in (first, role, teardown):
        texts[run.log_path] = run.output
    for path in glob.glob(str(tmp_path / "*.json")):
        with open(path) as handle:
            texts[path] = handle.read()
    texts["sandbox request log"] = json.dumps(sandbox.app.log)
    texts["imds emulator logs"] = json.dumps([emulator.requests for emulator in sandbox.imds])
    found = leaks(texts, secrets)
    count = sum(len(values) for values in secrets.values())
    record_figures("secrets-vvv", secrets_known=count, texts_scanned=len(texts),
                   bytes_scanned=sum(len(t) for t in texts.values()), leaks=len(found))
    assert found == [], found


def test_no_log_the_tests_wrote_holds_a_secret():
    """Every file under tests/output (whatever test wrote it, whenever): no sandbox secret key, no
    moto session token. Run last (scripts/test.sh) it covers the whole suite."""
    found, scanned = [], 0
    for path in glob.glob(os.path.join(ROOT, "tests", "output", "**", "*"), recursive=True):
        if not os.path.isfile(path) or os.path.getsize(path) > 50 * 1024 * 1024:
            continue
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8", "replace")
        scanned += 1
        for what, value in (("sandbox secret access key", Sandbox.SECRET_KEY),
                            ("moto session token", MOTO_SESSION_TOKEN_PREFIX),
                            ("secret planted in user data", PLANTED_SECRET)):
            if value in text:
                found.append((os.path.relpath(path, ROOT), what))
    record_figures("secrets-logs", files_scanned=scanned, leaks=len(found))
    assert found == [], found
    assert OUTPUT.startswith(os.path.join(ROOT, "tests", "output"))


def test_trust_policies_with_a_wildcard_principal_are_refused():
    from ansible.errors import AnsibleFilterError

    from ansible_collections.keyless.aws.plugins.filter.trust_policy import ec2_trust_policy

    for statement in ({"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"},
                      {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:*"},
                      {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::123456789012:root", "*"]},
                       "Action": ["sts:AssumeRole", "sts:TagSession"]}):
        with pytest.raises(AnsibleFilterError, match=r"any principal \('\*'\)"):
            ec2_trust_policy("us-east-1", extra_statements=[statement])
    named = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}
    assert len(ec2_trust_policy("us-east-1", extra_statements=[named])["Statement"]) == 2
