"""keyless.aws credential_chain: botocore's chain walked offline, keys described, never kept.

Every case builds a host in a folder (a home, files, an environment) and asks ``resolve`` which
source a program there takes first. The static cases are also put to botocore itself (its own
``create_credential_resolver``, with the providers that need the network taken out), so the order
is botocore's, not our reading of it.
"""

import json
import os

import pytest

from ansible_collections.keyless.aws.plugins.module_utils import credential_chain
from ansible_collections.keyless.aws.plugins.module_utils.credential_chain import HostFiles
from ansible_collections.keyless.aws.plugins.module_utils.credential_chain import describe_key
from ansible_collections.keyless.aws.plugins.module_utils.credential_chain import keys_in_text
from ansible_collections.keyless.aws.plugins.module_utils.credential_chain import resolve

# Made-up keys of the shape AWS gives (AKIA/ASIA + 16 base32 characters) and made-up secrets.
ENV_KEY = "AKIAQWERTYUIOPASDF2A"
FILE_KEY = "AKIAZXCVBNMLKJHGFD3B"
CONFIG_KEY = "AKIAPOIUYTREWQLKJH4C"
BOTO_KEY = "AKIAMNBVCXZLKJHGFD5D"
EC2_FILE_KEY = "AKIAASDFGHJKLQWERT6E"
SECRET = "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"
HOME = "/home/app"


def host(tmp_path, files):
    """A host root in tmp_path with ``files`` ({path: text}); returns HostFiles on it."""
    for path, text in files.items():
        real = tmp_path / path.lstrip("/")
        real.parent.mkdir(parents=True, exist_ok=True)
        real.write_text(text)
    return HostFiles(str(tmp_path))


def credentials(profile, key, secret=SECRET):
    text = "[{0}]\naws_access_key_id = {1}\n".format(profile, key)
    return text + ("aws_secret_access_key = {0}\n".format(secret) if secret else "")


CASES = {
    # name: (environment, files, expected method, expected key or None)
    "nothing: the instance role": ({}, {}, "iam-role", None),
    "keys in the environment": ({"AWS_ACCESS_KEY_ID": ENV_KEY, "AWS_SECRET_ACCESS_KEY": SECRET}, {}, "env", ENV_KEY),
    "the environment beats the credentials file": (
        {"AWS_ACCESS_KEY_ID": ENV_KEY, "AWS_SECRET_ACCESS_KEY": SECRET},
        {HOME + "/.aws/credentials": credentials("default", FILE_KEY)}, "env", ENV_KEY),
    "the environment beats AWS_PROFILE": (
        {"AWS_ACCESS_KEY_ID": ENV_KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_PROFILE": "ops"},
        {HOME + "/.aws/credentials": credentials("ops", FILE_KEY)}, "env", ENV_KEY),
    "the credentials file": ({}, {HOME + "/.aws/credentials": credentials("default", FILE_KEY)},
                             "shared-credentials-file", FILE_KEY),
    "AWS_PROFILE picks the section": (
        {"AWS_PROFILE": "ops"},
        {HOME + "/.aws/credentials": credentials("default", FILE_KEY) + credentials("ops", CONFIG_KEY)},
        "shared-credentials-file", CONFIG_KEY),
    "AWS_DEFAULT_PROFILE beats AWS_PROFILE": (
        {"AWS_PROFILE": "ops", "AWS_DEFAULT_PROFILE": "default"},
        {HOME + "/.aws/credentials": credentials("default", FILE_KEY) + credentials("ops", CONFIG_KEY)},
        "shared-credentials-file", FILE_KEY),
    "another profile's keys do not count": (
        {}, {HOME + "/.aws/credentials": credentials("ops", FILE_KEY)}, "iam-role", None),
    "AWS_SHARED_CREDENTIALS_FILE moves the file": (
        {"AWS_SHARED_CREDENTIALS_FILE": "/srv/app/creds"},
        {"/srv/app/creds": credentials("default", FILE_KEY), HOME + "/.aws/credentials": credentials("default", ENV_KEY)},
        "shared-credentials-file", FILE_KEY),
    "the credentials file beats the config file": (
        {}, {HOME + "/.aws/credentials": credentials("default", FILE_KEY),
             HOME + "/.aws/config": credentials("default", CONFIG_KEY)}, "shared-credentials-file", FILE_KEY),
    "the config file": ({}, {HOME + "/.aws/config": credentials("default", CONFIG_KEY)}, "config-file", CONFIG_KEY),
    "the config file's named profile is [profile NAME]": (
        {"AWS_PROFILE": "ops"},
        {HOME + "/.aws/config": credentials("profile ops", CONFIG_KEY) + credentials("ops", FILE_KEY)},
        "config-file", CONFIG_KEY),
    "AWS_CREDENTIAL_FILE": (
        {"AWS_CREDENTIAL_FILE": "/etc/app/aws.cred"},
        {"/etc/app/aws.cred": "AWSAccessKeyId={0}\nAWSSecretKey={1}\n".format(EC2_FILE_KEY, SECRET)},
        "ec2-credentials-file", EC2_FILE_KEY),
    "/etc/boto.cfg": ({}, {"/etc/boto.cfg": credentials("Credentials", BOTO_KEY)}, "boto-config", BOTO_KEY),
    "/etc/boto.cfg comes before ~/.boto": (
        {}, {"/etc/boto.cfg": credentials("Credentials", BOTO_KEY), HOME + "/.boto": credentials("Credentials", FILE_KEY)},
        "boto-config", BOTO_KEY),
    "~/.boto": ({}, {HOME + "/.boto": credentials("Credentials", BOTO_KEY)}, "boto-config", BOTO_KEY),
    "BOTO_CONFIG replaces both": (
        {"BOTO_CONFIG": "/srv/boto"},
        {"/etc/boto.cfg": credentials("Credentials", FILE_KEY), "/srv/boto": credentials("Credentials", BOTO_KEY)},
        "boto-config", BOTO_KEY),
    "the config file beats boto": (
        {}, {HOME + "/.aws/config": credentials("default", CONFIG_KEY), "/etc/boto.cfg": credentials("Credentials", BOTO_KEY)},
        "config-file", CONFIG_KEY),
}

# Cases whose winner needs the network in botocore (assume role, SSO, a process, the container
# endpoint): ours only.
NETWORK_CASES = {
    "assume-role with a static source profile": (
        {}, {HOME + "/.aws/config": "[default]\nrole_arn = arn:aws:iam::123456789012:role/app\nsource_profile = base\n",
             HOME + "/.aws/credentials": credentials("base", FILE_KEY)},
        "assume-role", FILE_KEY),
    "assume-role from the instance": (
        {}, {HOME + "/.aws/config": "[default]\nrole_arn = arn:aws:iam::123456789012:role/app\n"
                                    "credential_source = Ec2InstanceMetadata\n"}, "assume-role", None),
    "web identity from the environment": (
        {"AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token", "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/app"},
        {HOME + "/.aws/credentials": credentials("default", FILE_KEY)}, "assume-role-with-web-identity", None),
    "sso beats the credentials file": (
        {}, {HOME + "/.aws/config": "[default]\nsso_session = corp\nsso_account_id = 123456789012\n",
             HOME + "/.aws/credentials": credentials("default", FILE_KEY)}, "sso", None),
    "credential_process": ({}, {HOME + "/.aws/config": "[default]\ncredential_process = /usr/bin/get-creds\n"},
                           "custom-process", None),
    "login session": ({}, {HOME + "/.aws/config": "[default]\nlogin_session = arn:aws:iam::123456789012:user/x\n"},
                      "login", None),
    "the ECS container role": ({"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/x"}, {},
                               "container-role", None),
}


@pytest.mark.parametrize("name", sorted(CASES) + sorted(NETWORK_CASES))
def test_the_method_each_setup_resolves_to(tmp_path, name):
    env, files, method, key = dict(CASES, **NETWORK_CASES)[name]
    verdict = resolve(env, HOME, host(tmp_path, files))
    assert (verdict["method"], verdict["key"] and verdict["key"]["suffix"]) == (method, key and key[-4:])
    assert verdict["uses_instance_role"] == (method == "iam-role")
    assert verdict["error"] is None
    assert SECRET not in json.dumps(verdict) and (key is None or key not in json.dumps(verdict))


def botocore_load(tmp_path, monkeypatch, env, files, network=("container-role", "iam-role")):
    """The same host, asked of botocore itself: its resolver, without the providers that need the
    network, loads the credentials (or raises, as it would in the program)."""
    import botocore.credentials
    import botocore.session

    host(tmp_path, files)
    for variable in list(os.environ):
        if variable.startswith(("AWS_", "BOTO")):
            monkeypatch.delenv(variable)
    monkeypatch.setenv("HOME", str(tmp_path) + HOME)
    for variable, value in env.items():
        monkeypatch.setenv(variable, str(tmp_path) + value if value.startswith("/") else value)
    monkeypatch.setattr(botocore.credentials.BotoProvider, "DEFAULT_CONFIG_FILENAMES",
                        [str(tmp_path) + "/etc/boto.cfg", "~/.boto"])
    resolver = botocore.credentials.create_credential_resolver(botocore.session.Session())
    for name in network:
        resolver.remove(name)
    return resolver.load_credentials()


@pytest.mark.parametrize("name", sorted(CASES))
def test_botocore_takes_the_same_source(tmp_path, monkeypatch, name):
    env, files, method, key = CASES[name]
    loaded = botocore_load(tmp_path, monkeypatch, env, files)
    if method == "iam-role":
        assert loaded is None
    else:
        assert (loaded.method, loaded.access_key) == (method, key)


@pytest.mark.parametrize("env,files,method,error", [
    ({"AWS_ACCESS_KEY_ID": ENV_KEY}, {}, "env", "PartialCredentialsError"),
    ({"AWS_PROFILE": "gone"}, {HOME + "/.aws/credentials": credentials("default", FILE_KEY)}, "none", "ProfileNotFound"),
    # botocore reads the named profile before any provider: keys in the environment do not help.
    ({"AWS_PROFILE": "gone", "AWS_ACCESS_KEY_ID": ENV_KEY, "AWS_SECRET_ACCESS_KEY": SECRET}, {}, "none",
     "ProfileNotFound"),
    ({}, {HOME + "/.aws/credentials": credentials("default", FILE_KEY, secret=None)}, "shared-credentials-file",
     "PartialCredentialsError"),
    ({"AWS_CREDENTIAL_FILE": "/nowhere"}, {}, "ec2-credentials-file", "ConfigNotFound"),
    ({"AWS_EC2_METADATA_DISABLED": "true"}, {}, "none", "no credentials"),
    ({}, {HOME + "/.aws/config": "[default]\nrole_arn = arn:aws:iam::123456789012:role/app\n"}, "assume-role",
     "PartialCredentialsError"),
])
def test_where_botocore_raises_instead_of_going_on(tmp_path, monkeypatch, env, files, method, error):
    verdict = resolve(env, HOME, host(tmp_path / "ours", files))
    assert verdict["method"] == method and error in verdict["error"]
    assert not verdict["uses_instance_role"]
    if error in ("ProfileNotFound", "PartialCredentialsError", "ConfigNotFound"):
        import botocore.exceptions

        with pytest.raises(getattr(botocore.exceptions, error)):
            botocore_load(tmp_path / "botocore", monkeypatch, env, files)


def test_a_file_the_programs_user_cannot_read_counts_as_absent(tmp_path):
    files = host(tmp_path, {HOME + "/.aws/credentials": credentials("default", FILE_KEY)})
    os.chmod(str(tmp_path) + HOME + "/.aws", 0o700)
    owner = os.stat(str(tmp_path) + HOME + "/.aws").st_uid
    other = owner + 4242
    assert resolve({}, HOME, files, uid=owner, gids={owner})["method"] == "shared-credentials-file"
    assert resolve({}, HOME, files, uid=other, gids={other})["method"] == "iam-role"
    # The module itself read it: the key is the host's, whoever may use it.
    assert HOME + "/.aws/credentials" in files.texts


def test_a_key_is_described_never_shown():
    described = describe_key(ENV_KEY)
    assert described["kind"] == "long-term" and described["suffix"] == ENV_KEY[-4:]
    assert described["fingerprint"] == credential_chain.fingerprint(ENV_KEY) and len(described["fingerprint"]) == 16
    assert ENV_KEY not in json.dumps(described)
    assert describe_key("ASIAY34FZKBOKMUTVV7A")["kind"] == "temporary"


def test_the_account_a_key_id_encodes():
    # The published example of the layout: ASIAY34FZKBOKMUTVV7A belongs to account 609629065308.
    assert credential_chain.key_account("ASIAY34FZKBOKMUTVV7A") == "609629065308"
    assert credential_chain.key_account("AKIA") is None


def test_keys_in_text_finds_key_ids_and_nothing_longer():
    text = "#!/bin/bash\nexport AWS_ACCESS_KEY_ID={0}\nX=AKIA{1}\ntoken=XAKIAQWERTYUIOPASDF2A\n".format(
        ENV_KEY, "Q" * 20)
    assert [(line, key["suffix"]) for line, key in keys_in_text(text)] == [(2, ENV_KEY[-4:])]


def test_sdk_notes_for_runtimes_that_order_differently():
    assert "aws.accessKeyId" in credential_chain.sdk_note("/usr/lib/jvm/java-17/bin/java")
    assert "AWS_PROFILE" in credential_chain.sdk_note("/usr/bin/node")
    assert credential_chain.sdk_note("/usr/bin/python3") is None


def test_keys_only_amazon_aws_reads():
    found = credential_chain.amazon_aws_keys({"AWS_ACCESS_KEY": ENV_KEY, "AWS_SECRET_KEY": SECRET})
    assert found["variable"] == "AWS_ACCESS_KEY" and found["key"]["suffix"] == ENV_KEY[-4:] and found["secret_set"]
    assert credential_chain.amazon_aws_keys({"AWS_ACCESS_KEY_ID": ENV_KEY, "AWS_ACCESS_KEY": FILE_KEY}) is None
