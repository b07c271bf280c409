"""make bench: keyless.aws measured side by side against the amazon.aws way, on the sandbox.

One process starts the sandbox (moto on loopback, tests/sandbox) and drives ansible-playbook
subprocesses against it, as a user would run them. Every run is timed (wall clock of the whole
ansible-playbook command) and its API calls are counted from the sandbox's request log.

Rows (see bench/README.md):

* ``association``: attach a profile to a fleet of N existing instances in one task, then the
  no-op re-run, then a swap to a second profile. Ours: keyless.aws.ec2_profile_association
  (bench/playbooks/association_keyless.yml); amazon.aws: amazon.aws.ec2_instance with
  instance_ids + iam_instance_profile (bench/playbooks/association_amazon.yml).
* ``role``: the whole job end to end (IAM role, profile, launch template, attach + IMDSv2)
  for N instances, first run and re-run. Ours: playbooks/provision.yml (the
  keyless.aws.instance_profile role); amazon.aws: bench/playbooks/role_amazon.yml.
* ``throttled``: ours under EC2 throttling (bench/throttle.py), first run, re-run, swap.

Every trial starts from a reset sandbox with a fresh fleet, so each first run is a real first
run. For each N the contenders alternate (ours, amazon.aws, then amazon.aws, ours, ...) so that
the machine's drift hits both alike; the table gives medians.

    .venv/bin/python bench/run.py                   # what make bench runs
    .venv/bin/python bench/run.py --sizes 10 --reps 1 --role-reps 1 --throttle-n 10   # smoke

Exit status: 0 when every run did its job (whatever the targets say), 1 otherwise.
"""

import argparse
import collections
import datetime
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from sandbox.server import Sandbox  # noqa: E402  (tests/ on the path first)
from sandbox.seed import AMI, make_profile, profile_arn  # noqa: E402
from sandbox.seed import launch as seed_launch  # noqa: E402

from throttle import throttled  # noqa: E402

PLAYBOOKS = os.path.join(HERE, "playbooks")
PROVISION = os.path.join(ROOT, "playbooks", "provision.yml")
ROLE_DIR = os.path.join(ROOT, "roles", "instance_profile")
BIN = os.path.dirname(sys.executable)

INSTANCE_TYPE = "t3.micro"
PROFILE_A = "bench-web"
PROFILE_B = "bench-web-v2"
ROLE_APP = "bench-app"
OURS = "keyless.aws"
AMAZON = "amazon.aws"
CONTENDERS = (OURS, AMAZON)
# These rows run at moto's speed, with no rate limit: they show what each tool costs in CPU and calls.
# Ours is given a pace no account has (max_request_rate), so that its pacer, which would hold it to
# EC2's documented 5 calls a second, does not stand between it and moto; EC2's real limits are
# bench/aws.py's (make bench-aws), where ours runs with its defaults.
MOTO_SPEED_RATE = 1000000
MUTATING = ("AssociateIamInstanceProfile", "ReplaceIamInstanceProfileAssociation", "DisassociateIamInstanceProfile")
RECAP = re.compile(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)

ROW_ORDER = ("association", "role", "throttled")
PHASE_ORDER = ("first", "rerun", "swap")
PHASE_TITLES = {"first": "first run", "rerun": "no-op re-run", "swap": "swap to 2nd profile"}
ROW_TITLES = {"association": "fleet, one task", "role": "role end to end", "throttled": "throttled EC2"}


arn = profile_arn


# ---- the fleet ------------------------------------------------------------------------------


def launch(sandbox, count):
    return seed_launch(sandbox, count, INSTANCE_TYPE)


def attached(sandbox, ids):
    """{instance_id: profile ARN or None}, as DescribeIamInstanceProfileAssociations says."""
    found = {}
    paginator = sandbox.client("ec2").get_paginator("describe_iam_instance_profile_associations")
    for page in paginator.paginate():
        for association in page["IamInstanceProfileAssociations"]:
            if association["State"] in ("associating", "associated"):
                found[association["InstanceId"]] = association["IamInstanceProfile"]["Arn"]
    return dict((i, found.get(i)) for i in ids)


def fleet_problem(sandbox, ids, profile):
    """None when every instance carries ``profile``, else a sentence saying how many do not."""
    wrong = [i for i, a in attached(sandbox, ids).items() if a != arn(profile)]
    if not wrong:
        return None
    return "{0} of {1} instances do not carry {2} (e.g. {3})".format(len(wrong), len(ids), profile, wrong[0])


def role_job_problem(sandbox, ids):
    """None when the role's whole job is done: role, profile holding it, template default
    version with the profile and IMDSv2, instances carrying the profile with IMDSv2."""
    iam, ec2 = sandbox.client("iam"), sandbox.client("ec2")
    profile = iam.get_instance_profile(InstanceProfileName=ROLE_APP)["InstanceProfile"]
    if [r["RoleName"] for r in profile["Roles"]] != [ROLE_APP]:
        return "profile {0} does not hold role {0}".format(ROLE_APP)
    template = ec2.describe_launch_template_versions(LaunchTemplateName=ROLE_APP, Versions=["$Default"])
    data = template["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    carried = data.get("IamInstanceProfile") or {}
    if ROLE_APP not in (carried.get("Name"), (carried.get("Arn") or "").rsplit("/", 1)[-1]):
        return "launch template {0} does not carry the profile: {1}".format(ROLE_APP, carried)
    if (data.get("MetadataOptions") or {}).get("HttpTokens") != "required":
        return "launch template {0} does not require IMDSv2".format(ROLE_APP)
    problem = fleet_problem(sandbox, ids, ROLE_APP)
    if problem:
        return problem
    reply = ec2.describe_instances(InstanceIds=ids)
    loose = [i["InstanceId"] for r in reply["Reservations"] for i in r["Instances"]
             if (i.get("MetadataOptions") or {}).get("HttpTokens") != "required"]
    if loose:
        return "{0} instances do not require IMDSv2".format(len(loose))
    return None


# ---- one ansible-playbook run ---------------------------------------------------------------


class Bench:
    def __init__(self, sandbox, out):
        self.sandbox = sandbox
        self.out = out
        self.logs = os.path.join(out, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.records = []

    def env(self):
        env = dict(os.environ)
        env.update(self.sandbox.env())
        env.update(
            KEYLESS_SANDBOX_URL=self.sandbox.url,
            ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
            ANSIBLE_FORCE_COLOR="0",
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_LOCAL_TEMP=os.path.join(ROOT, ".build", "ansible-tmp"),
            ANSIBLE_HOME=os.path.join(ROOT, ".build", "ansible-home"),
        )
        return env

    def playbook(self, playbook, variables, label):
        """Run one playbook; returns (seconds, cpu, returncode, output, calls).

        ``cpu``: {"client": user+sys seconds of ansible-playbook and every process it ran
        (modules included), "sandbox": of this process, which serves the sandbox}. Unlike wall
        time, CPU time hardly moves when other work loads the machine."""
        vars_file = os.path.join(self.logs, label + ".vars.json")
        with open(vars_file, "w") as handle:
            json.dump(variables, handle)
        command = [os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local",
                   "-e", "ansible_python_interpreter=" + sys.executable, "-e", "@" + vars_file, playbook]
        self.sandbox.app.clear_log()
        children, own = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
        started = time.monotonic()
        completed = subprocess.run(command, env=self.env(), cwd=ROOT, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, check=False)
        seconds = time.monotonic() - started
        children_after, own_after = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
        cpu = {
            "client": round(children_after.ru_utime + children_after.ru_stime - children.ru_utime - children.ru_stime, 3),
            "sandbox": round(own_after.ru_utime + own_after.ru_stime - own.ru_utime - own.ru_stime, 3),
        }
        calls = [dict(c) for c in self.sandbox.calls() if c["service"] is not None]
        output = completed.stdout.decode("utf-8", "replace")
        with open(os.path.join(self.logs, label + ".log"), "w") as handle:
            handle.write(output)
        return seconds, cpu, completed.returncode, output, calls

    def measure(self, row, contender, n, rep, phase, playbook, variables, verify, expect_change):
        label = "{0}-{1}-N{2}-r{3}-{4}".format(row, contender.replace(".", ""), n, rep, phase)
        seconds, cpu, returncode, output, calls = self.playbook(playbook, variables, label)
        recap = RECAP.search(output)
        changed = int(recap.group(2)) if recap else None
        problems = []
        if returncode != 0:
            problems.append("ansible-playbook exited {0} (log: {1})".format(
                returncode, os.path.relpath(os.path.join(self.logs, label + ".log"), ROOT)))
        else:
            problem = verify()
            if problem:
                problems.append(problem)
        notes = []
        if changed is not None and expect_change != (changed > 0):
            notes.append("reported changed={0} on a {1}".format(changed, PHASE_TITLES[phase]))
        by_action = collections.Counter("{0}:{1}".format(c["service"], c["action"]) for c in calls)
        statuses = collections.Counter(str(c["status"]) for c in calls)
        record = {
            "row": row, "contender": contender, "n": n, "rep": rep, "phase": phase,
            "wall_seconds": round(seconds, 3),
            "cpu_seconds": cpu["client"],
            "sandbox_cpu_seconds": cpu["sandbox"],
            "api_calls": len(calls),
            "mutating_calls": sum(1 for c in calls if c["action"] in MUTATING),
            "throttled_calls": sum(1 for c in calls if c["status"] == 503),
            "by_action": dict(sorted(by_action.items())),
            "statuses": dict(sorted(statuses.items())),
            "returncode": returncode,
            "changed_tasks": changed,
            "ok": not problems,
            "problems": problems,
            "notes": notes,
            "load_average": _load(),
        }
        self.records.append(record)
        flag = "ok" if record["ok"] else "FAILED: " + "; ".join(problems)
        print("  {0:<11} {1:<11} N={2:<4} rep {3}  {4:<6} {5:7.2f} s  cpu {6:6.2f} s  {7:5d} calls  {8}{9}".format(
            row, contender, n, rep, phase, seconds, cpu["client"], len(calls), flag,
            "  (" + "; ".join(notes) + ")" if notes else ""), flush=True)
        return record

    # ---- trials: a reset sandbox, a fresh fleet, the phases in order ---------------------

    def skip(self, row, contender, n, rep, phase, reason):
        """``reason``: (short, detail)."""
        self.records.append({"row": row, "contender": contender, "n": n, "rep": rep, "phase": phase,
                             "skipped": reason[0], "skip_detail": reason[1], "ok": True, "problems": [], "notes": []})
        print("  {0:<11} {1:<11} N={2:<4} rep {3}  {4:<6} skipped: {5} ({6})".format(
            row, contender, n, rep, phase, reason[0], reason[1]), flush=True)

    def association_trial(self, contender, n, rep, row="association", throttle_every=None, allow=None):
        """First run, no-op re-run, swap. ``allow(phase)``: None, or (short, detail) saying why
        that phase (and the ones after it, which build on it) must be skipped."""
        self.sandbox.reset()
        make_profile(self.sandbox, PROFILE_A)
        make_profile(self.sandbox, PROFILE_B)
        ids = launch(self.sandbox, n)
        playbook = os.path.join(PLAYBOOKS, "association_keyless.yml" if contender == OURS else "association_amazon.yml")
        phases = (("first", PROFILE_A, True), ("rerun", PROFILE_A, False), ("swap", PROFILE_B, True))
        for index, (phase, profile, expect_change) in enumerate(phases):
            reason = allow(phase) if allow else None
            if reason:
                for later, _profile, _change in phases[index:]:
                    self.skip(row, contender, n, rep, later, reason)
                return
            variables = {"bench_instance_ids": ids, "bench_profile": profile}
            if contender == OURS:
                variables["bench_max_request_rate"] = MOTO_SPEED_RATE

            def verify(profile=profile):
                return fleet_problem(self.sandbox, ids, profile)

            if throttle_every:
                with throttled(self.sandbox, throttle_every) as throttle:
                    def unthrottled_verify(verify=verify, throttle=throttle):
                        throttle.paused = True  # the check after the run: not throttled, not counted
                        return verify()

                    record = self.measure(row, contender, n, rep, phase, playbook, variables, unthrottled_verify,
                                          expect_change)
                record["throttle_every"] = throttle_every
                record["throttle_injected"] = throttle.injected
            else:
                record = self.measure(row, contender, n, rep, phase, playbook, variables, verify, expect_change)
            if not record["ok"]:
                return

    def role_trial(self, contender, n, rep):
        self.sandbox.reset()
        ids = launch(self.sandbox, n)
        variables = {
            "keyless_role_name": ROLE_APP,
            "keyless_launch_templates": [{"name": ROLE_APP, "data": {"image_id": AMI, "instance_type": INSTANCE_TYPE}}],
            "keyless_instance_ids": ids,
        }
        if contender == OURS:
            variables["keyless_max_request_rate"] = MOTO_SPEED_RATE
        playbook = PROVISION if contender == OURS else os.path.join(PLAYBOOKS, "role_amazon.yml")
        for phase, expect_change in (("first", True), ("rerun", False)):
            record = self.measure("role", contender, n, rep, phase, playbook, variables,
                                  lambda: role_job_problem(self.sandbox, ids), expect_change)
            if not record["ok"]:
                return


def budget_guard(records, n, rep, args, started):
    """For an amazon.aws trial at a large N: allow(phase) says why (short, detail) a phase must be
    skipped when it would not end within the time budget, else None (a skipped phase skips the phases after it,
    which build on it).

    A phase's wall is projected from amazon.aws's median for that phase at the largest smaller N,
    scaled linearly with N (an overestimate: its fixed costs scale too); keyless.aws's remaining
    repetitions at this N (from its runs measured so far) are reserved."""
    def median_wall(contender, size, phase):
        walls = [r["wall_seconds"] for r in records if r["row"] == "association" and r["contender"] == contender
                 and r["n"] == size and r["phase"] == phase and not r.get("skipped") and r["ok"]]
        return median(walls)

    smaller = sorted(set(r["n"] for r in records if r["row"] == "association" and r["contender"] == AMAZON
                         and r["n"] < n and not r.get("skipped")))

    def projected(phase):
        if not smaller or median_wall(AMAZON, smaller[-1], phase) is None:
            return None
        return median_wall(AMAZON, smaller[-1], phase) * n / smaller[-1]

    def allow(phase):
        if not smaller:
            return None  # nothing to project from: run it
        ours_trial = sum(median_wall(OURS, n, p) or 0 for p in PHASE_ORDER)
        ours_left = max(0, args.reps - rep - 1) * ours_trial
        elapsed = time.monotonic() - started
        if elapsed + (projected(phase) or 0) + ours_left > args.budget:
            return ("time budget", "{0:.0f} s used, ~{1:.0f} s projected for this run, {2:.0f} s budget".format(
                elapsed, projected(phase) or 0, args.budget))
        return None

    return allow


def _load():
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def role_pending():
    """Why the role row cannot run yet (None when it can)."""
    needed = [os.path.join(ROLE_DIR, "tasks", "main.yml"), os.path.join(ROLE_DIR, "meta", "argument_specs.yml"),
              PROVISION]
    missing = [os.path.relpath(p, ROOT) for p in needed if not os.path.exists(p)]
    if missing:
        return "pending: {0} not there yet".format(", ".join(missing))
    with open(PROVISION) as handle:
        if "keyless.aws.instance_profile" not in handle.read():
            return "pending: playbooks/provision.yml does not use the keyless.aws.instance_profile role yet"
    return None


# ---- figures --------------------------------------------------------------------------------


def median(values):
    return statistics.median(values) if values else None


def summarize(records):
    """One entry per (row, n, phase): medians per contender, run counts, ratios."""
    groups = {}
    for record in records:
        key = (record["row"], record["n"], record["phase"])
        groups.setdefault(key, {c: [] for c in CONTENDERS})[record["contender"]].append(record)
    rows = []
    for (row, n, phase) in sorted(groups, key=lambda k: (ROW_ORDER.index(k[0]), k[1], PHASE_ORDER.index(k[2]))):
        by_contender = groups[(row, n, phase)]
        entry = {"row": row, "n": n, "phase": phase}
        for contender in CONTENDERS:
            key = "ours" if contender == OURS else "amazon"
            skipped = [r for r in by_contender[contender] if r.get("skipped")]
            runs = [r for r in by_contender[contender] if not r.get("skipped")]
            good = [r for r in runs if r["ok"]]
            entry[key + "_runs"] = len(runs)
            entry[key + "_failed"] = len(runs) - len(good)
            entry[key + "_skipped"] = sorted(set(r["skipped"] for r in skipped))
            entry[key + "_wall"] = median([r["wall_seconds"] for r in good])
            entry[key + "_cpu"] = median([r["cpu_seconds"] for r in good])
            entry[key + "_calls"] = median([r["api_calls"] for r in good])
            entry[key + "_throttled"] = median([r["throttled_calls"] for r in good])
            entry[key + "_notes"] = sorted(set(n for r in by_contender[contender] for n in r["notes"]))
        entry["wall_ratio"] = _ratio(entry["ours_wall"], entry["amazon_wall"])
        entry["cpu_ratio"] = _ratio(entry["ours_cpu"], entry["amazon_cpu"])
        entry["calls_ratio"] = _ratio(entry["ours_calls"], entry["amazon_calls"])
        rows.append(entry)
    return rows


def _ratio(ours, theirs):
    if ours is None or not theirs:
        return None
    return round(ours / theirs, 3)


def _cpu_text(entry):
    return "{0:.2f} s vs {1:.2f} s: ratio {2:.3f}".format(entry["ours_cpu"], entry["amazon_cpu"], entry["cpu_ratio"])


def _find(rows, row, n, phase):
    return next((r for r in rows if r["row"] == row and r["n"] == n and r["phase"] == phase), None)


def targets(rows, sizes, pending):
    """The issue's targets: [{target, status: met/missed/not measured, figures}]."""
    results = []

    def add(target, ok, figures):
        results.append({"target": target, "status": "not measured" if ok is None else ("met" if ok else "missed"),
                        "figures": figures})

    for phase, share in (("first", 5), ("rerun", 10)):
        entry = _find(rows, "association", 100, phase)
        if entry and entry["ours_wall"] is not None and entry["amazon_wall"] is not None:
            add("N=100 {0}: at most 1/{1} of the amazon.aws time".format(PHASE_TITLES[phase], share),
                entry["ours_wall"] <= entry["amazon_wall"] / share,
                "{0:.2f} s vs {1:.2f} s: ratio {2:.3f} (1/{3:.1f}), target <= {4:.3f}; CPU {5}".format(
                    entry["ours_wall"], entry["amazon_wall"], entry["wall_ratio"],
                    1 / entry["wall_ratio"] if entry["wall_ratio"] else float("inf"), 1 / share, _cpu_text(entry)))
        else:
            add("N=100 {0}: at most 1/{1} of the amazon.aws time".format(PHASE_TITLES[phase], share), None,
                "N=100 not in this run")
    for n in sizes:
        for phase, limit, text in (("first", n + 6, "N + 6"), ("rerun", 6, "6")):
            entry = _find(rows, "association", n, phase)
            if entry is None or entry["ours_calls"] is None:
                add("API calls, N={0} {1}: at most {2}".format(n, PHASE_TITLES[phase], text), None, "no successful run")
                continue
            add("API calls, N={0} {1}: at most {2}".format(n, PHASE_TITLES[phase], text),
                entry["ours_calls"] <= limit, "{0:g} calls, limit {1}".format(entry["ours_calls"], limit))
    small, big = _find(rows, "association", 100, "first"), _find(rows, "association", 500, "first")
    if small and big and small["ours_wall"] and big["ours_wall"] is not None:
        add("N=500 first run under 3x the N=100 first run", big["ours_wall"] < 3 * small["ours_wall"],
            "{0:.2f} s vs {1:.2f} s: {2:.2f}x (CPU {3:.2f} s vs {4:.2f} s: {5:.2f}x)".format(
                big["ours_wall"], small["ours_wall"], big["ours_wall"] / small["ours_wall"],
                big["ours_cpu"], small["ours_cpu"], big["ours_cpu"] / small["ours_cpu"]))
    else:
        add("N=500 first run under 3x the N=100 first run", None, "N=100 and N=500 not both in this run")
    throttled_rows = [r for r in rows if r["row"] == "throttled"]
    if throttled_rows:
        n = throttled_rows[0]["n"]
        failed = sum(r["ours_failed"] for r in throttled_rows)
        injected = sum(r["ours_throttled"] or 0 for r in throttled_rows)
        add("no failure under EC2 throttling (N={0})".format(n), failed == 0 and injected > 0,
            "{0} runs, {1} failed, {2} requests refused with RequestLimitExceeded and retried".format(
                sum(r["ours_runs"] for r in throttled_rows), failed, injected))
    else:
        add("no failure under EC2 throttling", None, "throttling run skipped")
    role_rows = [r for r in rows if r["row"] == "role" and r["phase"] == "rerun"]
    if pending:
        add("role end to end re-run at most 1/2 of the amazon.aws-only playbook", None, pending)
    elif not role_rows:
        add("role end to end re-run at most 1/2 of the amazon.aws-only playbook", None, "role row skipped")
    for role in role_rows:
        if role["ours_wall"] is None or role["amazon_wall"] is None:
            add("role end to end re-run (N={0}) at most 1/2 of the amazon.aws-only playbook".format(role["n"]), None,
                "no successful run of both")
            continue
        add("role end to end re-run (N={0}) at most 1/2 of the amazon.aws-only playbook".format(role["n"]),
            role["wall_ratio"] <= 0.5, "{0:.2f} s vs {1:.2f} s: ratio {2:.3f}, target <= 0.5; CPU {3}".format(
                role["ours_wall"], role["amazon_wall"], role["wall_ratio"], _cpu_text(role)))
    return results


def _cell(value, fmt="{0:.2f}"):
    return "-" if value is None else fmt.format(value)


def table(rows, pending, role_sizes=(10,)):
    lines = [
        "| row | N | phase | wall s ours | wall s amazon.aws | wall ratio | CPU s ours | CPU s amazon.aws | CPU ratio "
        "| API calls ours | API calls amazon.aws | calls ratio | runs ours/amazon.aws |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        runs = "{0}/{1}".format(r["ours_runs"], r["amazon_runs"])
        failed = r["ours_failed"] + r["amazon_failed"]
        if failed:
            runs += " ({0} FAILED)".format(failed)
        if r["row"] == "throttled":
            throttled = r["ours_throttled"] or 0
            runs += " (throttled: {0:g} call{1})".format(throttled, "" if throttled == 1 else "s")
        for key, contender in (("ours", OURS), ("amazon", AMAZON)):
            if r[key + "_skipped"]:
                runs += " ({0} skipped: {1})".format(contender, "; ".join(r[key + "_skipped"]))
        lines.append("| {0} | {1} | {2} | {3} | {4} | {5} | {6} | {7} | {8} | {9} | {10} | {11} | {12} |".format(
            ROW_TITLES[r["row"]], r["n"], PHASE_TITLES[r["phase"]],
            _cell(r["ours_wall"]), _cell(r["amazon_wall"]), _cell(r["wall_ratio"], "{0:.3f}"),
            _cell(r["ours_cpu"]), _cell(r["amazon_cpu"]), _cell(r["cpu_ratio"], "{0:.3f}"),
            _cell(r["ours_calls"], "{0:g}"), _cell(r["amazon_calls"], "{0:g}"), _cell(r["calls_ratio"], "{0:.3f}"),
            runs))
    if pending:
        for phase in ("first", "rerun"):
            lines.append("| {0} | {1} | {2} | PENDING | PENDING | - | - | - | - | - | - | - | {3} |".format(
                ROW_TITLES["role"], ",".join(str(n) for n in role_sizes), PHASE_TITLES[phase], pending))
    return "\n".join(lines)


def target_lines(results):
    return "\n".join("- **{0}** {1}: {2}".format(t["status"], t["target"], t["figures"]) for t in results)


def plot(rows, path):
    """wall time and API calls against N, per contender and phase (association row)."""
    try:
        import matplotlib
    except ImportError:
        return "matplotlib is not installed (pip install -r bench/requirements.txt): no plot"
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    figure, (wall_axis, calls_axis) = plt.subplots(1, 2, figsize=(12, 4.8))
    colours = {OURS: "tab:blue", AMAZON: "tab:orange"}
    styles = {"first": "-", "rerun": "--", "swap": ":"}
    for contender in CONTENDERS:
        key = "ours" if contender == OURS else "amazon"
        for phase in ("first", "rerun", "swap"):
            points = sorted((r["n"], r[key + "_wall"], r[key + "_calls"]) for r in rows
                            if r["row"] == "association" and r["phase"] == phase and r[key + "_wall"] is not None)
            if not points:
                continue
            label = "{0} {1}".format(contender, PHASE_TITLES[phase])
            ns = [p[0] for p in points]
            wall_axis.plot(ns, [p[1] for p in points], styles[phase], marker="o", color=colours[contender], label=label)
            calls_axis.plot(ns, [p[2] for p in points], styles[phase], marker="o", color=colours[contender], label=label)
    sizes = sorted(set(r["n"] for r in rows if r["row"] == "association"))
    markers = {OURS: "o", AMAZON: "s"}
    for line in wall_axis.lines + calls_axis.lines:
        line.set_marker(markers[OURS] if line.get_color() == colours[OURS] else markers[AMAZON])
    for axis, title, unit in ((wall_axis, "Wall time (median)", "seconds"), (calls_axis, "API calls", "calls")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xticks(sizes)
        axis.xaxis.set_major_formatter(ScalarFormatter())
        axis.xaxis.set_minor_formatter(NullFormatter())
        axis.yaxis.set_major_formatter(ScalarFormatter())
        axis.yaxis.set_minor_formatter(NullFormatter())
        axis.set_title(title)
        axis.set_xlabel("instances in the fleet (N)")
        axis.set_ylabel(unit)
        axis.grid(True, which="both", alpha=0.3)
    wall_axis.legend(fontsize=8)
    figure.suptitle("Attach / re-run / swap an instance profile on N instances, one task (sandbox)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return None


def machine():
    import ansible
    import boto3
    import moto

    try:
        from ansible_collections.amazon.aws.plugins.module_utils.common import AMAZON_AWS_COLLECTION_VERSION as amazon
    except ImportError:
        amazon = None
    cpu = None
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), None)
    except OSError:
        pass
    return {
        "platform": platform.platform(), "cpu": cpu, "cpus": os.cpu_count(), "python": platform.python_version(),
        "ansible_core": ansible.__version__, "amazon_aws": amazon, "boto3": boto3.__version__,
        "moto": moto.__version__, "load_average_at_start": _load(),
    }


def machine_line(total, info, loads=None, span="during the runs"):
    """The closing line of a bench's report: its time, the machine (``machine()``), the load average
    at start and end and, with ``loads`` (samples), its range ``span``."""
    line = ("Total bench time {0:.0f} s; machine: {1}, nproc {2} ({3}), Python {4}, ansible-core {5}, amazon.aws {6}, "
            "moto {7}; load average {8} at start, {9} at end").format(
                total, info["platform"], info.get("nproc", info["cpus"]), info["cpu"], info["python"],
                info["ansible_core"], info["amazon_aws"], info["moto"], info["load_average_at_start"],
                info["load_average_at_end"])
    if loads is not None:
        line += ", {0} to {1} {2}".format(min(loads) if loads else "-", max(loads) if loads else "-", span)
    return line + "."


# ---- the whole bench ------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100,500", help="fleet sizes N, comma-separated (default 10,100,500)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per contender and N (default 3)")
    parser.add_argument("--amazon-large-reps", type=int, default=1,
                        help="repetitions of amazon.aws for N >= --large (default 1: ~1 min per run at N=500)")
    parser.add_argument("--large", type=int, default=500, help="N from which --amazon-large-reps applies (default 500)")
    parser.add_argument("--role-n", default="10",
                        help="fleet sizes of the role row, comma-separated (default 10; 0 skips the row)")
    parser.add_argument("--role-reps", type=int, default=3, help="repetitions of the role row (default 3)")
    parser.add_argument("--throttle-n", type=int, default=500, help="fleet size of the throttling run (0 skips it)")
    parser.add_argument("--throttle-every", type=int, default=4,
                        help="every k-th EC2 request is refused with RequestLimitExceeded (default 4: 25%%)")
    parser.add_argument("--budget", type=float, default=570,
                        help="seconds the whole bench may take (default 570); amazon.aws runs at N >= --large that "
                             "would not end in time are skipped and marked so (0: no limit)")
    parser.add_argument("--out", default=os.path.join(HERE, "results"), help="results folder (default bench/results)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    os.makedirs(args.out, exist_ok=True)
    started = time.monotonic()
    info = machine()
    role_sizes = [int(s) for s in args.role_n.split(",") if s.strip() and int(s) > 0]
    pending = role_pending() if role_sizes else None
    print("make bench: keyless.aws vs amazon.aws against the sandbox (moto {0}, {1} CPUs, load {2})".format(
        info["moto"], info["cpus"], info["load_average_at_start"]), flush=True)
    with Sandbox() as sandbox:
        bench = Bench(sandbox, args.out)

        def fleet_rows(n, guard=False):
            for rep in range(max(args.reps, 1)):
                for contender in (CONTENDERS if rep % 2 == 0 else tuple(reversed(CONTENDERS))):
                    reps = args.amazon_large_reps if contender == AMAZON and n >= args.large else args.reps
                    if rep >= reps:
                        continue
                    allow = None
                    if guard and contender == AMAZON and args.budget:
                        allow = budget_guard(bench.records, n, rep, args, started)
                    bench.association_trial(contender, n, rep, allow=allow)

        # The small fleets, the role row and the throttling run first; the large fleets last,
        # where amazon.aws runs only as far as the time budget lets it (see budget_guard).
        for n in sizes:
            if n < args.large:
                fleet_rows(n)
        if role_sizes and not pending:
            for role_n in role_sizes:
                for rep in range(args.role_reps):
                    for contender in (CONTENDERS if rep % 2 == 0 else tuple(reversed(CONTENDERS))):
                        bench.role_trial(contender, role_n, rep)
        elif pending:
            print("  role row {0}".format(pending), flush=True)
        if args.throttle_n:
            bench.association_trial(OURS, args.throttle_n, 0, row="throttled", throttle_every=args.throttle_every)
        for n in sizes:
            if n >= args.large:
                fleet_rows(n, guard=True)
        records = bench.records

    rows = summarize(records)
    checked = targets(rows, sizes, pending)
    total = time.monotonic() - started
    info["load_average_at_end"] = _load()
    text = table(rows, pending, role_sizes)
    plot_note = plot(rows, os.path.join(args.out, "bench.png"))
    command = "bench/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
    settings = dict(vars(args), sizes=sizes, role_n=role_sizes)
    report = "\n".join([
        "Medians; wall = the whole ansible-playbook command; API calls from the sandbox's request log.",
        "",
        text,
        "",
        "Targets:",
        target_lines(checked),
        "",
        machine_line(total, info),
    ])
    print("\n" + report, flush=True)
    if plot_note:
        print(plot_note)
    with open(os.path.join(args.out, "table.md"), "w") as handle:
        handle.write(report + "\n")
    with open(os.path.join(args.out, "bench.json"), "w") as handle:
        json.dump({"command": command.strip(), "settings": settings, "machine": info,
                   "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                   "total_seconds": round(total, 1), "role_row": pending or ("measured" if role_sizes else "skipped"), "rows": rows,
                   "targets": checked, "runs": records}, handle, indent=1)
    print("Raw figures: {0}; plot: {1}".format(
        os.path.relpath(os.path.join(args.out, "bench.json")),
        "none" if plot_note else os.path.relpath(os.path.join(args.out, "bench.png"))))
    return 0 if all(r["ok"] for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
