# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The static keys of one host, and which credentials each of its programs and users really gets.

Runs on the instance (standard library only). ``scan`` reads, below a root folder:

* every user with a home (``/etc/passwd``), root included: the chain a login of that user walks
  (``/etc/environment`` as pam_env gives it, then the user's files);
* every running process (``/proc/<pid>/environ``, its user, its systemd unit or container from
  ``/proc/<pid>/cgroup``): the chain it walks with its own environment and, for a process in a
  container, the container's own files (``/proc/<pid>/root``);
* systemd units that set AWS variables (``Environment=``, ``EnvironmentFile=``, in the unit file
  and its ``.d/*.conf`` drop-ins, under /etc, /run and /usr/lib): the chain the service starts with;
* cloud-init's copy of the instance's user data.

Every key id met anywhere is described (``credential_chain.describe_key``) and listed with every
place it stands; secrets are never kept. The decisions are ``credential_chain.resolve``'s.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import gzip
import os
import re
import shlex

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.credential_chain import HostFiles
from ansible_collections.keyless.aws.plugins.module_utils.credential_chain import KEY_ID
from ansible_collections.keyless.aws.plugins.module_utils.credential_chain import amazon_aws_keys
from ansible_collections.keyless.aws.plugins.module_utils.credential_chain import describe_key
from ansible_collections.keyless.aws.plugins.module_utils.credential_chain import keys_in_text
from ansible_collections.keyless.aws.plugins.module_utils.credential_chain import resolve
from ansible_collections.keyless.aws.plugins.module_utils.credential_chain import sdk_note

UNIT_FOLDERS = ("/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")
USER_DATA = ("/var/lib/cloud/instance/user-data.txt", "/var/lib/cloud/instance/user-data.txt.i")
USER_DATA_SCRIPTS = "/var/lib/cloud/instance/scripts"
# A unit is looked at when it names an AWS variable or holds a key id.
_AWS_SETTING = re.compile(r"\b(AWS_[A-Z_]+|BOTO_CONFIG)=")
_UNIT_OF_CGROUP = re.compile(r"/([^/]+\.service)(?:/|$)")
_CONTAINER_OF_CGROUP = re.compile(r"(?:docker|libpod|cri-containerd|crio)-([0-9a-f]{12})[0-9a-f]*\.scope")


def host_argument_spec():
    """The options of the modules that judge a host below a root: where its files and processes are."""
    return dict(root=dict(type="path", default="/"), proc=dict(type="path", default="/proc"))


def check_host_paths(root, proc=None):
    """The root (and, when processes are read, the process table) must be folders of this host."""
    for name, value, live in (("root", root, "/"), ("proc", proc, "/proc")):
        if value is not None and not os.path.isdir(value):
            raise KeylessError("{0}: {1} is not a folder on this host; give the folder the host's files are below "
                               "({2} on a live host).".format(name, value, live), param=name)


def _users(files):
    """Users with a home that exists, root first: {name, uid, gid, gids, home}."""
    groups = {}
    for line in (files.read("/etc/group") or "").splitlines():
        fields = line.split(":")
        if len(fields) >= 4:
            for member in filter(None, fields[3].split(",")):
                groups.setdefault(member, set()).add(_int(fields[2]))
    users = []
    for line in (files.read("/etc/passwd") or "").splitlines():
        fields = line.split(":")
        if len(fields) < 7 or not fields[5] or fields[5] == "/nonexistent":
            continue
        if not os.path.isdir(files.path(fields[5])):
            continue
        uid, gid = _int(fields[2]), _int(fields[3])
        users.append({"name": fields[0], "uid": uid, "gid": gid, "home": fields[5],
                      "gids": set([gid]) | groups.get(fields[0], set())})
    users.sort(key=lambda user: (user["uid"] != 0, user["name"]))
    return users


def _int(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def env_assignments(text):
    """(name, value, line) of a KEY=VALUE file: /etc/environment, a unit's EnvironmentFile."""
    found = []
    for number, raw in enumerate((text or "").splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("export "):
            line = line[len("export "):].strip()
        name, sep, value = line.partition("=")
        if sep and re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name.strip()):
            found.append((name.strip(), value.strip().strip("'\""), number))
    return found


def _environment_of(assignments):
    env, places = {}, {}
    for name, value, place in assignments:
        env[name] = value
        places[name] = place
    return env, places


def unit_settings(files, folder, name):
    """A unit's service environment and user, from the unit file and its drop-ins, in systemd's order
    (``UnsetEnvironment=`` last): (env, places of each variable, user, the files read)."""
    paths = [folder + "/" + name]
    # Drop-ins come from every unit folder, sorted by file name; a name in /etc hides the same name
    # further down (UNIT_FOLDERS is in systemd's order of precedence).
    drop_ins = {}
    for place in reversed(UNIT_FOLDERS):
        for entry in files.listdir(place + "/" + name + ".d"):
            if entry.endswith(".conf"):
                drop_ins[entry] = place + "/" + name + ".d/" + entry
    paths += [drop_ins[entry] for entry in sorted(drop_ins)]
    assignments, user, read, unset = [], None, [], []
    for path in paths:
        text = files.read(path)
        if text is None:
            continue
        read.append(path)
        section = None
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if line.startswith("["):
                section = line
                continue
            if section != "[Service]" or "=" not in line:
                continue
            directive, _sep, value = line.partition("=")
            directive = directive.strip()
            if directive == "User":
                user = value.strip()
            elif directive == "UnsetEnvironment":
                unset.extend(value.split())
            elif directive == "Environment":
                try:
                    words = shlex.split(value)
                except ValueError:
                    words = value.split()
                for word in words:
                    key, sep, setting = word.partition("=")
                    if sep:
                        assignments.append((key, setting, {"file": path, "line": number}))
            elif directive == "EnvironmentFile":
                optional = value.strip().startswith("-")
                env_path = value.strip().lstrip("-")
                env_text = files.read(env_path)
                if env_text is None:
                    if not optional and env_path not in files.unreadable:
                        files.unreadable.append(env_path)
                    continue
                read.append(env_path)
                assignments += [(key, setting, {"file": env_path, "line": line_number})
                                for key, setting, line_number in env_assignments(env_text)]
    env, places = _environment_of(assignments)
    # systemd.exec(5): UnsetEnvironment= is applied last, to the environment Environment= and
    # EnvironmentFile= made; a word with "=" removes only that exact assignment.
    for word in unset:
        name, sep, value = word.partition("=")
        if name in env and (not sep or env[name] == value):
            env.pop(name)
            places.pop(name, None)
    return env, places, user, read


def _read_user_data(files):
    texts = []
    paths = list(USER_DATA) + [USER_DATA_SCRIPTS + "/" + entry for entry in files.listdir(USER_DATA_SCRIPTS)]
    for path in paths:
        real = files.path(path)
        if not os.path.isfile(real):
            continue
        try:
            with open(real, "rb") as handle:
                raw = handle.read()
        except OSError:
            files.unreadable.append(path)
            continue
        if raw[:2] == b"\x1f\x8b":
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError):
                pass
        texts.append((path, raw.decode("utf-8", "replace")))
    return texts


def _process_ids(proc, pids):
    if pids:
        return [int(pid) for pid in pids]
    try:
        return sorted(int(entry) for entry in os.listdir(proc) if entry.isdigit())
    except OSError:
        return []


def _ancestors(proc):
    """This process and its ancestors: the run itself, never reported."""
    chain, pid = set(), os.getpid()
    while pid and pid not in chain:
        chain.add(pid)
        try:
            with open(os.path.join(proc, str(pid), "stat")) as handle:
                pid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return chain


def _process(proc, pid):
    """What /proc says of a process: environment, user, groups, command, unit, root. None if gone;
    {"unreadable": True} where its environment is not ours to read."""
    base = os.path.join(proc, str(pid))
    try:
        with open(os.path.join(base, "environ"), "rb") as handle:
            raw_env = handle.read()
    except FileNotFoundError:
        return None
    except OSError:
        return {"pid": pid, "unreadable": True}
    if not raw_env:
        return None  # a kernel thread, or a process that cleared its environment
    env = {}
    for entry in raw_env.split(b"\0"):
        name, sep, value = entry.decode("utf-8", "replace").partition("=")
        if sep:
            env[name] = value
    uid, gids = None, set()
    try:
        with open(os.path.join(base, "status")) as handle:
            for line in handle:
                if line.startswith("Uid:"):
                    uid = int(line.split()[2])
                elif line.startswith("Groups:"):
                    gids = set(int(g) for g in line.split()[1:])
                elif line.startswith("Gid:"):
                    gids.add(int(line.split()[2]))
    except (OSError, ValueError, IndexError):
        pass
    executable = None
    try:
        with open(os.path.join(base, "cmdline"), "rb") as handle:
            executable = handle.read().split(b"\0")[0].decode("utf-8", "replace")
    except OSError:
        pass
    unit, container = None, None
    try:
        with open(os.path.join(base, "cgroup")) as handle:
            cgroup = handle.read()
        match = _CONTAINER_OF_CGROUP.search(cgroup)
        container = match.group(1) if match else None
        match = _UNIT_OF_CGROUP.search(cgroup)
        unit = match.group(1) if match and not container else None
    except OSError:
        pass
    try:
        root = os.readlink(os.path.join(base, "root"))
    except OSError:
        root = "/"
    # Only the program's name: its arguments may hold a secret (--secret-access-key ...).
    return {"pid": pid, "env": env, "uid": uid, "gids": gids, "command": os.path.basename(executable or "") or None,
            "executable": executable, "unit": unit, "container": container, "root": root}


class _KeyBook:
    """Every key met, by fingerprint, with every place it stands."""

    def __init__(self):
        self.keys = {}

    def add(self, key, place):
        if not key or not key.get("fingerprint"):
            return
        entry = self.keys.setdefault(key["fingerprint"], dict(key, places=[]))
        if place not in entry["places"]:
            entry["places"].append(place)

    def add_text(self, text, place):
        for line, key in keys_in_text(text):
            self.add(key, dict(place, line=line))

    def add_env(self, env, place):
        for name, value in sorted(env.items()):
            for match in KEY_ID.finditer(value or ""):
                self.add(describe_key(match.group(1)), dict(place, variable=name))

    def listing(self):
        return sorted(self.keys.values(), key=lambda key: (key["kind"], key["fingerprint"]))


def _program(book, verdict, **fields):
    """A result entry: who (fields) and the verdict; the key it takes goes into the book, where it
    stands (a key id of no known shape, ``unrecognised``, is found only so)."""
    entry = dict(fields)
    entry.update(verdict)
    place = dict((name, fields[name]) for name in ("pid", "command", "unit") if fields.get(name) is not None)
    place.update((name, value) for name, value in verdict["evidence"].items() if name in ("file", "line", "variable"))
    book.add(verdict["key"], place)
    return entry


def _services(files, users, book):
    """The systemd services that set AWS variables (or hold a key id), each judged as it starts."""
    results, seen_units = [], set()
    for folder in UNIT_FOLDERS:
        for name in files.listdir(folder):
            if not name.endswith(".service") or name in seen_units:
                continue
            env, places, unit_user, read = unit_settings(files, folder, name)
            texts = [files.read(path) or "" for path in read]
            if not any(_AWS_SETTING.search(text) or KEY_ID.search(text) for text in texts):
                continue
            seen_units.add(name)
            user = next((u for u in users if u["name"] == (unit_user or "root")), None)
            verdict = resolve(env, user["home"] if user else "/root", files,
                              user["uid"] if user else None, user["gids"] if user else ())
            evidence = verdict["evidence"]
            if evidence.get("variable") in places:
                evidence.update(places[evidence["variable"]])
            results.append(_program(book, verdict, unit=name, user=unit_user or "root"))
    return results


def _programs(files, proc, pids, users, book):
    """Every running process (but this run's own), judged with its own environment and, in a
    container, the container's files: (results, pids whose environment could not be read)."""
    by_uid = dict((user["uid"], user) for user in users)
    results, unreadable = [], []
    skip = _ancestors(proc)
    for pid in _process_ids(proc, pids):
        if pid in skip:
            continue
        info = _process(proc, pid)
        if info is None:
            continue
        if info.get("unreadable"):
            unreadable.append(pid)
            continue
        own_files = files if info["root"] == "/" else HostFiles(os.path.join(proc, str(pid), "root"))
        user = by_uid.get(info["uid"]) if own_files is files else None
        home = info["env"].get("HOME") or (user["home"] if user else "/root")
        verdict = resolve(info["env"], home, own_files, info["uid"], info["gids"] or ())
        book.add_env(info["env"], {"pid": pid, "command": info["command"]})
        if own_files is not files:
            for path, text in sorted(own_files.texts.items()):
                book.add_text(text, {"file": path, "container": info["container"]})
        entry = _program(book, verdict, pid=pid, command=info["command"], user=user["name"] if user else info["uid"],
                         unit=info["unit"], container=info["container"])
        note = sdk_note(info["executable"])
        if note:
            entry["sdk_note"] = note
        ansible = amazon_aws_keys(info["env"])
        if ansible:
            entry["amazon_aws"] = ansible
        results.append(entry)
    return results, unreadable


def scan(root="/", proc="/proc", pids=None, processes=True, units=True):
    """The host's report: programs, users, services, user data, keys, unreadable places, keyless."""
    files = HostFiles(root)
    book = _KeyBook()
    users = _users(files)
    login_env, _places = _environment_of(
        [(name, value, {"file": "/etc/environment", "line": line})
         for name, value, line in env_assignments(files.read("/etc/environment"))])

    user_results = []
    for user in users:
        verdict = resolve(login_env, user["home"], files, user["uid"], user["gids"])
        user_results.append(_program(book, verdict, user=user["name"], home=user["home"]))

    service_results = _services(files, users, book) if units else []
    program_results, unreadable_processes = _programs(files, proc, pids, users, book) if processes else ([], [])

    user_data = []
    for path, text in _read_user_data(files):
        for line, key in keys_in_text(text):
            user_data.append({"file": path, "line": line, "key": key})
            book.add(key, {"file": path, "line": line, "user_data": True})

    for path, text in sorted(files.texts.items()):
        book.add_text(text, {"file": path})
    keys = book.listing()
    unreadable = sorted(set(files.unreadable)) + ["/proc/{0}/environ".format(pid) for pid in unreadable_processes]
    everyone = user_results + service_results + program_results
    return {
        # No key anywhere, and nobody resolves to one. Unreadable places make it less than certain:
        # `complete` says whether everything asked for was read.
        "keyless": not keys and not any(entry["static_key"] for entry in everyone),
        "complete": not unreadable,
        "keys": keys,
        "programs": program_results,
        "users": user_results,
        "services": service_results,
        "user_data": user_data,
        "unreadable": unreadable,
    }


def _who(entry):
    if "pid" in entry:
        return "{0} (pid {1}, {2})".format(entry.get("command") or "?", entry["pid"], entry["method"])
    if "unit" in entry and "home" not in entry:
        return "service {0} ({1})".format(entry["unit"], entry["method"])
    return "user {0} ({1})".format(entry["user"], entry["method"])


def summary(result):
    """One sentence on a scan's result."""
    if result["keyless"]:
        return "no static AWS key on this host: every program, user and service resolves to the instance role" + (
            "" if result["complete"] else " (but {0} places could not be read)".format(len(result["unreadable"])))
    shadowing = [entry for entry in result["programs"] + result["services"] + result["users"] if entry["static_key"]]
    parts = ["{0} key{1} found on this host".format(len(result["keys"]), "" if len(result["keys"]) == 1 else "s")]
    if shadowing:
        parts.append("{0} resolve{1} to a static key instead of the instance role: {2}".format(
            len(shadowing), "s" if len(shadowing) == 1 else "", ", ".join(_who(entry) for entry in shadowing[:10])))
    return "; ".join(parts)
