# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which credentials a program on this host really gets: botocore's credential chain, walked offline.

Runs on the instance, so the standard library only (no botocore there, no network, no call to AWS).
The order is botocore's ``create_credential_resolver`` (botocore/credentials.py), method names as
botocore reports them::

    env, assume-role, assume-role-with-web-identity, sso, shared-credentials-file, login,
    custom-process, config-file, ec2-credentials-file, boto-config, container-role, iam-role

A program that resolves to anything but ``iam-role`` does not use the instance's role, whatever
profile the instance carries. The walk stops where botocore stops: at the first provider that
answers, or at the first that raises (a key id without its secret, a profile named in
``AWS_PROFILE`` that no file holds, ``AWS_CREDENTIAL_FILE`` naming a missing file).

No secret is ever kept: a key id is turned into its description (``describe_key``: kind, last four
characters, the account it encodes, a fingerprint) where it is read, and secrets are only tested
for presence. Files are judged as the program's user would see them: one that user cannot read
counts as absent, as it does for botocore running as that user.

The private helper names start with ``_``; the collection's modules use ``resolve``,
``describe_key``, ``keys_in_text``, ``HostFiles`` and ``sdk_note``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import os
import re
import stat

METHODS = (
    "env", "assume-role", "assume-role-with-web-identity", "sso", "shared-credentials-file", "login",
    "custom-process", "config-file", "ec2-credentials-file", "boto-config", "container-role", "iam-role",
)
# The methods that answer with a key kept on the host (a secret anyone who reads it can use elsewhere).
STATIC_METHODS = ("env", "shared-credentials-file", "config-file", "ec2-credentials-file", "boto-config")

# An access key id: AKIA (a user's long-term key) or ASIA (temporary, from STS), then 16 capitals or
# digits (AWS's are base32, A-Z and 2-7; a made-up one with 0, 1, 8 or 9 is found too: the stricter
# reading for a scanner). Not glued to other capitals or digits, so a longer token is not taken for
# a key. The one pattern of the collection: user data (user_data.py) and hosts (host_keys.py).
KEY_ID = re.compile(r"(?<![A-Z0-9])((?:AKIA|ASIA)[A-Z0-9]{16})(?![A-Z0-9])")
_FINGERPRINT_SALT = b"keyless.aws access key fingerprint v1\n"


def fingerprint(key_id):
    """A short, stable fingerprint of a key id: the instance side and the IAM side compute it alike,
    so a key found on a host is matched with IAM's without the whole id in any result."""
    return hashlib.sha256(_FINGERPRINT_SALT + key_id.encode("ascii")).hexdigest()[:16]


def key_account(key_id):
    """The account id a key id encodes, or None. After the four-letter prefix, the 16 base32
    characters decode to 10 bytes; of the first six (48 bits), bits 7 to 46 are the account. The
    layout is AWS's and undocumented; public analyses of key ids agree on it (ASIAY34FZKBOKMUTVV7A
    is account 609629065308), and it holds for keys made since about 2019."""
    if len(key_id) != 20:
        return None
    try:
        raw = base64.b32decode(key_id[4:20])  # 16 characters: 10 bytes
    except (ValueError, TypeError):
        return None
    number = int.from_bytes(raw[:6], "big")
    account = (number & 0x7FFFFFFFFF80) >> 7
    return "{0:012d}".format(account) if account else None


def describe_key(key_id):
    """What may be said of a key: its kind, its last four characters, its account, its fingerprint."""
    kind = "long-term" if key_id.startswith("AKIA") else "temporary" if key_id.startswith("ASIA") else "unknown"
    return {
        "kind": kind,
        "suffix": key_id[-4:],
        "account": key_account(key_id) if kind != "unknown" else None,
        "fingerprint": fingerprint(key_id),
    }


def _key_of(value):
    """describe_key of a value read where a key id must be, or a description of what is there."""
    value = (value or "").strip().strip("'\"")
    match = KEY_ID.fullmatch(value)
    if match:
        return describe_key(value)
    return {"kind": "unrecognised", "suffix": value[-4:] if len(value) > 8 else None, "account": None,
            "fingerprint": fingerprint(value) if value else None}


def keys_in_text(text):
    """(line number, described key) for every key id in ``text`` (user data, a unit file...)."""
    found = []
    for number, line in enumerate((text or "").splitlines(), 1):
        for match in KEY_ID.finditer(line):
            found.append((number, describe_key(match.group(1))))
    return found


class HostFiles:
    """Reads the host's files below ``root``, as a given user would.

    ``read(path, uid, gids)`` returns the text, or None where the file is absent or that user may
    not read it (botocore, as that user, would not see it either). Where this process itself cannot
    read a file it was asked for (no ``become``), the path goes into ``unreadable``: never skipped
    in silence."""

    def __init__(self, root="/"):
        self.root = root
        self.unreadable = []
        # path -> text of every file read (whoever may read it): the keys they hold are the host's.
        self.texts = {}

    def path(self, path):
        return os.path.join(self.root, path.lstrip("/")) if self.root not in ("", "/") else path

    @staticmethod
    def _allows(mode, owner, group, uid, gids, bits):
        if uid is None or uid == 0:
            return True
        if owner == uid:
            return bool(mode & bits[0])
        if group in gids:
            return bool(mode & bits[1])
        return bool(mode & bits[2])

    def visible_to(self, path, uid, gids):
        """Whether ``uid`` may read ``path``: every folder on the way searchable (below the root, which
        is the host's ``/``), the file readable."""
        real = self.path(path)
        parts = os.path.normpath(path).split(os.sep)
        for depth in range(2, len(parts)):
            folder = self.path(os.sep.join(parts[:depth]) or os.sep)
            try:
                info = os.stat(folder)
            except OSError:
                return False
            if not self._allows(info.st_mode, info.st_uid, info.st_gid, uid, gids,
                                (stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH)):
                return False
        try:
            info = os.stat(real)
        except OSError:
            return False
        return self._allows(info.st_mode, info.st_uid, info.st_gid, uid, gids,
                            (stat.S_IRUSR, stat.S_IRGRP, stat.S_IROTH))

    def read(self, path, uid=None, gids=()):
        text = self.texts.get(path)
        if text is None:  # each file is read once per scan, whatever the number of programs that look at it
            real = self.path(path)
            if not os.path.isfile(real):
                return None
            try:
                with open(real, "rb") as handle:
                    text = handle.read().decode("utf-8", "replace")
            except OSError:
                if path not in self.unreadable:
                    self.unreadable.append(path)
                return None
            self.texts[path] = text
        return text if self.visible_to(path, uid, gids) else None

    def listdir(self, path):
        try:
            return sorted(os.listdir(self.path(path)))
        except FileNotFoundError:
            return []
        except OSError:
            if path not in self.unreadable:
                self.unreadable.append(path)
            return []


def _ini(text):
    """An INI file as botocore reads it: {section: {key: (value, line)}}, keys lower-cased, a value
    continued on indented lines (as for ``s3 =`` blocks) kept as its first line."""
    sections, current = {}, None
    for number, raw in enumerate((text or "").splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1].strip(), {})
            continue
        if current is None or raw[:1] in (" ", "\t"):
            continue
        for separator in ("=", ":"):
            if separator in line:
                key, _sep, value = line.partition(separator)
                current.setdefault(key.strip().lower(), (value.strip(), number))
                break
    return sections


def _config_profiles(text):
    """The profiles of a config file: ``[default]`` and ``[profile NAME]`` (other sections, such as
    ``[sso-session NAME]``, are not profiles), as botocore's build_profile_map."""
    profiles = {}
    for section, values in _ini(text).items():
        words = section.split()
        if section == "default":
            profiles.setdefault("default", {}).update(values)
        elif len(words) == 2 and words[0] == "profile":
            profiles.setdefault(words[1], {}).update(values)
    return profiles


def _expand(path, home):
    if path.startswith("~"):
        return (home or "/root").rstrip("/") + path[1:]
    return path


class Verdict(dict):
    """The source botocore would take first: method, where it comes from, the key it yields."""

    def __init__(self, method, evidence=None, key=None, error=None, checked=()):
        super(Verdict, self).__init__(
            method=method, evidence=evidence or {}, key=key, error=error,
            static_key=method in STATIC_METHODS or bool(method == "assume-role" and key),
            uses_instance_role=method == "iam-role", checked=list(checked))


def _value(profile, name):
    entry = profile.get(name)
    return entry[0] if entry else None


class _Chain:
    """What one program's chain reads: its environment, its profile (``AWS_DEFAULT_PROFILE``, else
    ``AWS_PROFILE``, else ``default``) and the config and credentials files, as its user sees them."""

    def __init__(self, env, home, files, uid, gids):
        self.env, self.home, self.files, self.uid, self.gids = dict(env or {}), home, files, uid, gids
        self.named = self.env.get("AWS_DEFAULT_PROFILE") or self.env.get("AWS_PROFILE") or None
        self.variable = "AWS_DEFAULT_PROFILE" if self.env.get("AWS_DEFAULT_PROFILE") else "AWS_PROFILE"
        self.profile_name = self.named or "default"
        self.config_path = _expand(self.env.get("AWS_CONFIG_FILE") or "~/.aws/config", home)
        self.credentials_path = _expand(self.env.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials", home)
        self.config = _config_profiles(self.read(self.config_path))
        self.credentials = _ini(self.read(self.credentials_path))
        # botocore's full_config: the config file's profiles, with the credentials file's on top.
        self.merged = dict((name, dict(values)) for name, values in self.config.items())
        for name, values in self.credentials.items():
            self.merged.setdefault(name, {}).update(values)
        self.profile = self.merged.get(self.profile_name, {})

    def read(self, path):
        return self.files.read(path, self.uid, self.gids)

    def where(self, name):
        """The file and line of a setting of the profile (the credentials file's wins)."""
        for path, sections in ((self.credentials_path, self.credentials), (self.config_path, self.config)):
            if name in sections.get(self.profile_name, {}):
                return {"file": path, "line": sections[self.profile_name][name][1], "profile": self.profile_name}
        return {"profile": self.profile_name}


# Each provider: (method, evidence, key, error) when it answers (or raises), else None.

def _missing_profile(chain):
    # botocore reads the named profile's settings before any provider (session.get_scoped_config in
    # create_credential_resolver): a profile no file holds raises, even with keys in the environment.
    if chain.named and chain.named not in chain.merged:
        return ("none", {"variable": chain.variable}, None,
                "{0}={1} names a profile that neither {2} nor {3} holds: botocore raises ProfileNotFound "
                "before it looks for credentials".format(chain.variable, chain.named, chain.config_path,
                                                         chain.credentials_path))
    return None


def _env(chain):
    if not chain.env.get("AWS_ACCESS_KEY_ID"):
        return None
    error = None if chain.env.get("AWS_SECRET_ACCESS_KEY") else (
        "AWS_ACCESS_KEY_ID is set without AWS_SECRET_ACCESS_KEY: botocore raises PartialCredentialsError and the "
        "program gets no credentials at all")
    return "env", {"variable": "AWS_ACCESS_KEY_ID"}, _key_of(chain.env["AWS_ACCESS_KEY_ID"]), error


def _assume_role(chain):
    profile = chain.profile
    if "role_arn" not in profile or "web_identity_token_file" in profile:
        return None
    source = _value(profile, "source_profile")
    source_values = chain.merged.get(source, {}) if source else {}
    key = _key_of(source_values["aws_access_key_id"][0]) if "aws_access_key_id" in source_values else None
    evidence = chain.where("role_arn")
    evidence.update(role_arn=_value(profile, "role_arn"), source_profile=source,
                    credential_source=_value(profile, "credential_source"))
    error = None
    if not source and not _value(profile, "credential_source"):
        error = "profile {0} has role_arn but neither source_profile nor credential_source: botocore raises " \
                "PartialCredentialsError".format(chain.profile_name)
    return "assume-role", evidence, key, error


def _web_identity(chain):
    if "web_identity_token_file" in chain.profile and "role_arn" in chain.profile:
        return "assume-role-with-web-identity", chain.where("web_identity_token_file"), None, None
    if chain.env.get("AWS_WEB_IDENTITY_TOKEN_FILE") and chain.env.get("AWS_ROLE_ARN"):
        return "assume-role-with-web-identity", {"variable": "AWS_WEB_IDENTITY_TOKEN_FILE"}, None, None
    return None


def _profile_setting(method, names):
    """A provider that answers when the profile holds one of ``names`` (sso, login, a process)."""
    def provider(chain):
        for name in names:
            if name in chain.profile:
                return method, chain.where(name), None, None
        return None
    return provider


def _shared_credentials(chain):
    section = chain.credentials.get(chain.profile_name, {})
    if "aws_access_key_id" not in section:
        return None
    evidence = {"file": chain.credentials_path, "line": section["aws_access_key_id"][1], "profile": chain.profile_name}
    error = None if section.get("aws_secret_access_key", ("",))[0] else (
        "{0} [{1}] has aws_access_key_id without aws_secret_access_key: botocore raises "
        "PartialCredentialsError".format(chain.credentials_path, chain.profile_name))
    return "shared-credentials-file", evidence, _key_of(section["aws_access_key_id"][0]), error


def _config_file(chain):
    section = chain.config.get(chain.profile_name, {})
    if "aws_access_key_id" not in section:
        return None
    evidence = {"file": chain.config_path, "line": section["aws_access_key_id"][1], "profile": chain.profile_name}
    return "config-file", evidence, _key_of(section["aws_access_key_id"][0]), None


def _ec2_credentials_file(chain):
    if "AWS_CREDENTIAL_FILE" not in chain.env:
        return None
    path = _expand(chain.env["AWS_CREDENTIAL_FILE"], chain.home)
    text = chain.read(path)
    if text is None:
        return ("ec2-credentials-file", {"variable": "AWS_CREDENTIAL_FILE", "file": path}, None,
                "AWS_CREDENTIAL_FILE names {0}, which this program cannot read: botocore raises "
                "ConfigNotFound".format(path))
    for number, line in enumerate(text.splitlines(), 1):
        name, _sep, value = line.partition("=")
        if name.strip() == "AWSAccessKeyId":
            return ("ec2-credentials-file", {"variable": "AWS_CREDENTIAL_FILE", "file": path, "line": number},
                    _key_of(value), None)
    return None


def _boto_config(chain):
    places = [chain.env["BOTO_CONFIG"]] if "BOTO_CONFIG" in chain.env else ["/etc/boto.cfg", "~/.boto"]
    for place in places:
        path = _expand(place, chain.home)
        section = _ini(chain.read(path)).get("Credentials", {})
        if "aws_access_key_id" in section:
            return ("boto-config", {"file": path, "line": section["aws_access_key_id"][1]},
                    _key_of(section["aws_access_key_id"][0]), None)
    return None


def _container_role(chain):
    for name in ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        if chain.env.get(name):
            return "container-role", {"variable": name}, None, None
    return None


def _iam_role(chain):
    if chain.env.get("AWS_EC2_METADATA_DISABLED", "").lower() == "true":
        return ("none", {"variable": "AWS_EC2_METADATA_DISABLED"}, None,
                "AWS_EC2_METADATA_DISABLED=true turns the instance role off and nothing else answers: "
                "botocore finds no credentials")
    return "iam-role", {"endpoint": "instance metadata service"}, None, None


# botocore's order (METHODS), with the named-profile check it makes before any of them.
_PROVIDERS = (
    ("profile", _missing_profile),
    ("env", _env),
    ("assume-role", _assume_role),
    ("assume-role-with-web-identity", _web_identity),
    ("sso", _profile_setting("sso", ("sso_session", "sso_start_url"))),
    ("shared-credentials-file", _shared_credentials),
    ("login", _profile_setting("login", ("login_session",))),
    ("custom-process", _profile_setting("custom-process", ("credential_process",))),
    ("config-file", _config_file),
    ("ec2-credentials-file", _ec2_credentials_file),
    ("boto-config", _boto_config),
    ("container-role", _container_role),
    ("iam-role", _iam_role),
)


def resolve(env, home, files, uid=None, gids=()):
    """Walk botocore's chain for a program with environment ``env`` whose user's home is ``home``.

    Returns a ``Verdict``: ``method`` (one of METHODS, or ``none`` where botocore finds nothing or
    refuses before it looks), ``evidence`` (the variable, or the file and line), ``key`` (described,
    where the method takes a key), ``error`` (where botocore would raise instead of going on) and
    ``checked`` (the methods walked before the one taken)."""
    chain = _Chain(env, home, files, uid, gids)
    checked = []
    for name, provider in _PROVIDERS:
        answer = provider(chain)
        if answer is not None:
            return Verdict(*answer, checked=checked)
        if name in METHODS:
            checked.append(name)
    raise AssertionError("the instance-role provider always answers")


def amazon_aws_keys(env):
    """Keys only amazon.aws modules (an Ansible run on this host) read, besides botocore's:
    ``AWS_ACCESS_KEY`` / ``AWS_SECRET_KEY``, passed to boto3 as explicit keys that beat the whole
    chain (amazon.aws module_utils/modules.py: ``env_fallback`` of ``access_key``)."""
    if env.get("AWS_ACCESS_KEY_ID") or not env.get("AWS_ACCESS_KEY"):
        return None
    return {"variable": "AWS_ACCESS_KEY", "key": _key_of(env["AWS_ACCESS_KEY"]),
            "secret_set": bool(env.get("AWS_SECRET_ACCESS_KEY") or env.get("AWS_SECRET_KEY"))}


# Documented chains that differ from botocore's, by runtime. Said only for programs that are not Python.
_SDK_NOTES = (
    (re.compile(r"(^|/)java[0-9.]*$"),
     "Java SDK v2: the system properties aws.accessKeyId / aws.secretAccessKey (-D on the command line) come "
     "before the environment; then environment, web identity, profile files, container, instance role"),
    (re.compile(r"(^|/)(node|nodejs|bun|deno)$"),
     "JavaScript SDK v3: with AWS_PROFILE set, keys in the environment are skipped and the profile is read"),
)


def sdk_note(executable):
    """A sentence where the program's runtime orders its chain differently from botocore's, or None."""
    for pattern, note in _SDK_NOTES:
        if pattern.search(executable or ""):
            return note
    return None
