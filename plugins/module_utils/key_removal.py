# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Take named static keys off a host: only the lines that hold them, kept recoverable.

Runs on the instance (standard library only). The keys are named by fingerprint (what
``credential_sources_info`` and ``static_keys_info`` return); ``host_keys.scan`` says where each
stands. Then, per place:

* a credentials, config or boto file (``aws_access_key_id = KEY``): that line and, in the same
  section, the secret and session token lines; the section's other settings (region, output, a
  role) and every other profile stay;
* an environment file (``/etc/environment``, a unit's ``EnvironmentFile=``, a script's
  ``export``): the ``AWS_ACCESS_KEY_ID=KEY`` line and the file's ``AWS_SECRET_ACCESS_KEY`` /
  ``AWS_SESSION_TOKEN`` lines; ``AWSAccessKeyId=KEY`` and ``AWSSecretKey`` in an
  ``AWS_CREDENTIAL_FILE``;
* a systemd unit or drop-in (``Environment=``): only the key variables' words of that line; and a
  drop-in of ours for the unit, ``keyless-aws-no-static-keys.conf``, sets ``UnsetEnvironment=``
  for the key variables (systemd applies it last, after ``Environment=`` and
  ``EnvironmentFile=``: systemd.exec(5)), so no other file brings them back;
* the instance's user data (cloud-init's copy) and a running process's environment cannot be
  changed here: they are listed in ``left`` (the user data is the controller's to change; a
  process gets its new environment when restarted).

Every removed line is written, before the file changes, to ``<backup_dir>/<fingerprint>.json``
(a root-only folder and file), with the time of its removal, so what was removed can be put back
until the key is retired. ``removed_at`` (per key backed up on the host, named in this run or an
earlier one) is when the host last gave the key up: a re-run that finds nothing left to remove
still says when, so the soak of ``static_keys`` counts from the run that took the key away, not
from each re-run; and a run naming no key (``fingerprints: []``, check mode) reads just that.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import os
import re
import shlex
import stat

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.credential_chain import KEY_ID
from ansible_collections.keyless.aws.plugins.module_utils.credential_chain import fingerprint
from ansible_collections.keyless.aws.plugins.module_utils.host_keys import UNIT_FOLDERS
from ansible_collections.keyless.aws.plugins.module_utils.host_keys import scan

DROP_IN = "keyless-aws-no-static-keys.conf"
KEY_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
BACKUP_DIR = "/var/lib/keyless-aws/removed-keys"
# Settings that go with a key id in the same INI section or environment file.
_INI_COMPANIONS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token", "aws_security_token")
_ENV_COMPANIONS = KEY_VARIABLES + ("AWS_ACCESS_KEY", "AWS_SECRET_KEY")
_EC2_FILE_COMPANIONS = ("AWSAccessKeyId", "AWSSecretKey")
_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*[=:]")


def _name_of(line):
    match = _ASSIGNMENT.match(line)
    return match.group(1) if match else None


def _section_bounds(lines, index):
    """(first, last) line indexes of the INI section that holds line ``index``."""
    first = index
    while first > 0 and not lines[first - 1].strip().startswith("["):
        first -= 1
    last = index
    while last + 1 < len(lines) and not lines[last + 1].strip().startswith("["):
        last += 1
    return first, last


def _environment_line(line, wanted):
    """A unit's ``Environment=`` line without the key variables, when it assigns a wanted key:
    the new line (None when nothing is left on it); the line itself when it holds none."""
    directive, _sep, value = line.partition("=")
    try:
        words = shlex.split(value)
    except ValueError:
        words = value.split()
    holds = any(fingerprint(key_id) in wanted for word in words for key_id in KEY_ID.findall(word))
    if not holds:
        return line
    kept = [word for word in words if word.partition("=")[0] not in _ENV_COMPANIONS]
    return "{0}={1}".format(directive, " ".join(shlex.quote(word) for word in kept)) if kept else None


def line_edits(text, wanted):
    """{0-based line index: the new line, or None to take it out} for the keys whose fingerprints
    are in ``wanted``: each key id's line and its companions (section or file), as the module docs
    say; on a unit's ``Environment=`` line, only the key variables' words."""
    lines = text.splitlines()
    edits = {}
    for index, line in enumerate(lines):
        ids = [match.group(1) for match in KEY_ID.finditer(line)]
        if not any(fingerprint(key_id) in wanted for key_id in ids):
            continue
        name = _name_of(line) or ""
        if line.strip().startswith("Environment="):
            edits[index] = _environment_line(line.strip(), wanted)
        elif name.lower() == "aws_access_key_id":
            first, last = _section_bounds(lines, index)
            edits.update((i, None) for i in range(first, last + 1)
                         if (_name_of(lines[i]) or "").lower() in _INI_COMPANIONS)
        elif name in _ENV_COMPANIONS:
            edits.update((i, None) for i, other in enumerate(lines) if _name_of(other) in _ENV_COMPANIONS)
        elif name in _EC2_FILE_COMPANIONS:
            edits.update((i, None) for i, other in enumerate(lines) if _name_of(other) in _EC2_FILE_COMPANIONS)
        else:
            edits[index] = None  # a key id on a line of no known shape: that line alone
    return edits


def masked(line):
    """A removed line as results and diffs show it: the name, never the value."""
    name = _name_of(line)
    ids = KEY_ID.findall(line)
    if ids:
        return "{0}= ...{1}".format(name + " " if name else "", ids[0][-4:])
    return "{0}= (secret, not shown)".format(name + " " if name else "")


def _unit_of(path):
    """The unit a unit file or drop-in belongs to, or None."""
    for folder in UNIT_FOLDERS:
        if path.startswith(folder + "/"):
            rest = path[len(folder) + 1:].split("/")
            if rest[0].endswith(".service.d") and len(rest) == 2:
                return rest[0][:-2]
            if rest[0].endswith(".service") and len(rest) == 1:
                return rest[0]
    return None


def plan_removal(root, proc, fingerprints, pids=None):
    """What taking ``fingerprints`` off the host changes: {files, drop_ins, left, found}, from a scan."""
    wanted = set(fingerprints)
    report = scan(root=root, proc=proc, pids=pids)
    files, units, left, found = {}, set(), [], []
    for key in report["keys"]:
        if key["fingerprint"] not in wanted:
            continue
        found.append(key["fingerprint"])
        for place in key["places"]:
            if place.get("user_data") or (place.get("file") or "").startswith("/var/lib/cloud/"):
                left.append(dict(place, fingerprint=key["fingerprint"], why="the instance's user data: change it "
                                 "from the controller (ModifyInstanceAttribute) or launch from a template without it"))
            elif "pid" in place:
                left.append(dict(place, fingerprint=key["fingerprint"], why="a running process keeps the environment "
                                 "it started with: restart it once its service or files no longer hold the key"))
            elif "file" in place:
                files.setdefault(place["file"], set()).add(key["fingerprint"])
                if _unit_of(place["file"]):
                    units.add(_unit_of(place["file"]))
    return {"files": files, "drop_ins": sorted(units), "left": left, "found": sorted(set(found)),
            "unreadable": report["unreadable"]}


def _real(root, path):
    return os.path.join(root, path.lstrip("/")) if root not in ("", "/") else path


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


def removal_times(root, backup_dir):
    """{fingerprint: the latest removal its backup file records}, for every key backed up on the host."""
    times = {}
    try:
        names = sorted(os.listdir(_real(root, backup_dir)))
    except OSError:
        return times  # none yet, or not ours to read
    for value in (name[:-len(".json")] for name in names if re.match(r"^[0-9a-f]{16}\.json$", name)):
        path = os.path.join(_real(root, backup_dir), value + ".json")
        try:
            with open(path) as handle:
                entries = json.load(handle)
        except (OSError, ValueError):
            continue  # none yet, or not ours to read (the run without become is refused before changes)
        stamps = [entry.get("removed_at") for entry in entries if isinstance(entry, dict) and entry.get("removed_at")]
        if stamps:
            times[value] = max(stamps)
    return times


def _write_backup(root, backup_dir, fingerprint_value, entry):
    folder = _real(root, backup_dir)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    os.chmod(folder, 0o700)
    path = os.path.join(folder, fingerprint_value + ".json")
    saved = []
    if os.path.exists(path):
        with open(path) as handle:
            saved = json.load(handle)
    saved.append(entry)
    descriptor = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(saved, handle, indent=1)
    os.replace(path + ".tmp", path)
    return os.path.join(backup_dir, fingerprint_value + ".json")


def _rewrite(real, lines, edits, keep_newline):
    """The file with ``edits`` applied, written in place of the old one (same mode and owner)."""
    info = os.stat(real)
    kept = [edits.get(index, line) for index, line in enumerate(lines)]
    kept = [line for line in kept if line is not None]
    text = "\n".join(kept) + ("\n" if keep_newline and kept else "")
    temporary = real + ".keyless-tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IMODE(info.st_mode))
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    os.chown(temporary, info.st_uid, info.st_gid)
    os.replace(temporary, real)


def _writable(real):
    """Whether this process may change ``real`` (a file, or the folder a new file goes into)."""
    while not os.path.exists(real):
        real = os.path.dirname(real)
    if os.path.isdir(real):
        return os.access(real, os.W_OK | os.X_OK)
    return os.access(real, os.R_OK | os.W_OK) and os.access(os.path.dirname(real), os.W_OK | os.X_OK)


def _check_writable(root, backup_dir, plan):
    """Before any change: every file to edit, the backup folder and the drop-in folders must be ours to
    change, so a run without become changes nothing rather than half of the host."""
    places = sorted(plan["files"]) + [backup_dir] + ["/etc/systemd/system/{0}.d".format(u) for u in plan["drop_ins"]]
    refused = [place for place in places if not _writable(_real(root, place))]
    if refused:
        raise KeylessError("this run may not change {0}: run the task with become=true. Nothing was changed.".format(
            ", ".join(refused)))


def remove_keys(root, proc, fingerprints, check_mode, backup_dir=BACKUP_DIR, pids=None):
    """Take the keys off the host (or, in check mode, say what would go). Returns the module's result
    but for the service restarts, which are the module's (``drop_ins`` names the units)."""
    plan = plan_removal(root, proc, fingerprints, pids)
    if not check_mode:
        _check_writable(root, backup_dir, plan)
    removed, diff, backups = [], [], set()
    now = _now()
    for path in sorted(plan["files"]):
        real = _real(root, path)
        with open(real) as handle:
            text = handle.read()
        lines = text.splitlines()
        edits = line_edits(text, plan["files"][path])
        if not edits:
            continue
        shown = ["line {0}: {1}{2}".format(index + 1, masked(lines[index]), "" if edits[index] is None else
                                           " (the line's other settings kept)") for index in sorted(edits)]
        removed.append({"file": path, "lines": sorted(index + 1 for index in edits),
                        "fingerprints": sorted(plan["files"][path]), "removed": shown})
        diff.append({"before_header": path, "after_header": path, "before": "\n".join(shown) + "\n", "after": ""})
        if check_mode:
            continue
        for value in sorted(plan["files"][path]):
            backups.add(_write_backup(root, backup_dir, value, {
                "file": path, "removed_at": now,
                "removed": [{"line": index + 1, "text": lines[index]} for index in sorted(edits)]}))
        _rewrite(real, lines, edits, text.endswith("\n"))
    drop_ins = []
    for unit in plan["drop_ins"]:
        path = "/etc/systemd/system/{0}.d/{1}".format(unit, DROP_IN)
        content = "# Written by keyless.aws: this service gets its AWS credentials from the instance role.\n" \
                  "[Service]\nUnsetEnvironment={0}\n".format(" ".join(KEY_VARIABLES))
        real = _real(root, path)
        current = None
        if os.path.exists(real):
            with open(real) as handle:
                current = handle.read()
        if current == content:
            continue
        drop_ins.append({"unit": unit, "file": path})
        diff.append({"before_header": path, "after_header": path, "before": current or "", "after": content})
        if not check_mode:
            os.makedirs(os.path.dirname(real), mode=0o755, exist_ok=True)
            with open(real, "w") as handle:
                handle.write(content)
            os.chmod(real, 0o644)
    return {
        "changed": bool(removed or drop_ins),
        "removed": removed,
        "drop_ins": drop_ins,
        "left": plan["left"],
        "found": plan["found"],
        "not_found": sorted(set(fingerprints) - set(plan["found"])),
        "backups": sorted(backups),
        "removed_at": removal_times(root, backup_dir),
        "unreadable": plan["unreadable"],
        "diff": diff,
    }
