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

# An access key id: AKIA (a user's long-term key) or ASIA (temporary, from STS), then 16 characters
# of base32. Not glued to other capitals or digits, so a longer token is not taken for a key.
KEY_ID = re.compile(r"(?<![A-Z0-9])((?:AKIA|ASIA)[A-Z2-7]{16})(?![A-Z0-9])")
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


def resolve(env, home, files, uid=None, gids=()):
    """Walk botocore's chain for a program with environment ``env`` whose user's home is ``home``.

    Returns a ``Verdict``: ``method`` (one of METHODS, or ``none`` where IMDS is turned off and
    nothing answers), ``evidence`` (the variable, or the file and line), ``key`` (described, where
    the method takes a key), ``error`` (where botocore would raise instead of going on) and
    ``checked`` (the methods walked before it)."""
    env = dict(env or {})
    checked = []

    def found(method, evidence=None, key=None, error=None):
        return Verdict(method, evidence, key, error, checked)

    named = env.get("AWS_DEFAULT_PROFILE") or env.get("AWS_PROFILE") or None
    variable = "AWS_DEFAULT_PROFILE" if env.get("AWS_DEFAULT_PROFILE") else "AWS_PROFILE"
    profile_name = named or "default"
    config_path = _expand(env.get("AWS_CONFIG_FILE") or "~/.aws/config", home)
    credentials_path = _expand(env.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials", home)
    config = _config_profiles(files.read(config_path, uid, gids))
    credentials = _ini(files.read(credentials_path, uid, gids))
    # botocore's full_config: the config file's profiles, with the credentials file's on top.
    merged = dict((name, dict(values)) for name, values in config.items())
    for name, values in credentials.items():
        merged.setdefault(name, {}).update(values)
    profile = merged.get(profile_name, {})

    def where(name):
        """The file and line of a setting of the profile (the credentials file's wins)."""
        if name in credentials.get(profile_name, {}):
            return {"file": credentials_path, "line": credentials[profile_name][name][1], "profile": profile_name}
        if name in config.get(profile_name, {}):
            return {"file": config_path, "line": config[profile_name][name][1], "profile": profile_name}
        return {"profile": profile_name}

    checked.append("env")
    if env.get("AWS_ACCESS_KEY_ID"):
        evidence = {"variable": "AWS_ACCESS_KEY_ID"}
        if not env.get("AWS_SECRET_ACCESS_KEY"):
            return found("env", evidence, _key_of(env["AWS_ACCESS_KEY_ID"]),
                         "AWS_ACCESS_KEY_ID is set without AWS_SECRET_ACCESS_KEY: botocore raises "
                         "PartialCredentialsError and the program gets no credentials at all")
        return found("env", evidence, _key_of(env["AWS_ACCESS_KEY_ID"]))

    if named and named not in merged:
        return found("env", {"variable": variable}, None,
                     "{0}={1} names a profile that neither {2} nor {3} holds: botocore raises "
                     "ProfileNotFound".format(variable, named, config_path, credentials_path))

    checked.append("assume-role")
    if "role_arn" in profile and "web_identity_token_file" not in profile:
        source = _value(profile, "source_profile")
        key = None
        if source:
            source_values = merged.get(source, {})
            if "aws_access_key_id" in source_values:
                key = _key_of(source_values["aws_access_key_id"][0])
        evidence = where("role_arn")
        evidence.update(role_arn=_value(profile, "role_arn"), source_profile=source,
                        credential_source=_value(profile, "credential_source"))
        error = None
        if not source and not _value(profile, "credential_source"):
            error = "profile {0} has role_arn but neither source_profile nor credential_source: botocore " \
                    "raises InvalidConfigError".format(profile_name)
        return found("assume-role", evidence, key, error)

    checked.append("assume-role-with-web-identity")
    if "web_identity_token_file" in profile and "role_arn" in profile:
        return found("assume-role-with-web-identity", where("web_identity_token_file"))
    if env.get("AWS_WEB_IDENTITY_TOKEN_FILE") and env.get("AWS_ROLE_ARN"):
        return found("assume-role-with-web-identity", {"variable": "AWS_WEB_IDENTITY_TOKEN_FILE"})

    checked.append("sso")
    for name in ("sso_session", "sso_start_url"):
        if name in profile:
            return found("sso", where(name))

    checked.append("shared-credentials-file")
    section = credentials.get(profile_name, {})
    if "aws_access_key_id" in section:
        evidence = {"file": credentials_path, "line": section["aws_access_key_id"][1], "profile": profile_name}
        error = None if section.get("aws_secret_access_key", ("",))[0] else (
            "{0} [{1}] has aws_access_key_id without aws_secret_access_key: botocore raises "
            "PartialCredentialsError".format(credentials_path, profile_name))
        return found("shared-credentials-file", evidence, _key_of(section["aws_access_key_id"][0]), error)

    checked.append("login")
    if "login_session" in profile:
        return found("login", where("login_session"))

    checked.append("custom-process")
    if "credential_process" in profile:
        return found("custom-process", where("credential_process"))

    checked.append("config-file")
    section = config.get(profile_name, {})
    if "aws_access_key_id" in section:
        evidence = {"file": config_path, "line": section["aws_access_key_id"][1], "profile": profile_name}
        return found("config-file", evidence, _key_of(section["aws_access_key_id"][0]))

    checked.append("ec2-credentials-file")
    if "AWS_CREDENTIAL_FILE" in env:
        path = _expand(env["AWS_CREDENTIAL_FILE"], home)
        text = files.read(path, uid, gids)
        if text is None:
            return found("ec2-credentials-file", {"variable": "AWS_CREDENTIAL_FILE", "file": path}, None,
                         "AWS_CREDENTIAL_FILE names {0}, which this program cannot read: botocore raises "
                         "ConfigNotFound".format(path))
        for number, line in enumerate(text.splitlines(), 1):
            name, _sep, value = line.partition("=")
            if name.strip() == "AWSAccessKeyId":
                return found("ec2-credentials-file", {"variable": "AWS_CREDENTIAL_FILE", "file": path, "line": number},
                             _key_of(value))

    checked.append("boto-config")
    places = [env["BOTO_CONFIG"]] if "BOTO_CONFIG" in env else ["/etc/boto.cfg", "~/.boto"]
    for place in places:
        path = _expand(place, home)
        section = _ini(files.read(path, uid, gids)).get("Credentials", {})
        if "aws_access_key_id" in section:
            return found("boto-config", {"file": path, "line": section["aws_access_key_id"][1]},
                         _key_of(section["aws_access_key_id"][0]))

    checked.append("container-role")
    for name in ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        if env.get(name):
            return found("container-role", {"variable": name})

    checked.append("iam-role")
    if env.get("AWS_EC2_METADATA_DISABLED", "").lower() == "true":
        return found("none", {"variable": "AWS_EC2_METADATA_DISABLED"}, None,
                     "AWS_EC2_METADATA_DISABLED=true turns the instance role off and nothing else answers: "
                     "botocore finds no credentials")
    return found("iam-role", {"endpoint": "instance metadata service"})


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


def sdk_note(executable, env=None):
    """A sentence where the program's runtime orders its chain differently from botocore's, or None."""
    for pattern, note in _SDK_NOTES:
        if pattern.search(executable or ""):
            return note
    return None
