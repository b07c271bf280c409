"""make bench-aws, the forks row: playbooks/audit.yml over an organisation with --forks 1 and --forks 10.

An organisation of ``--accounts`` member accounts (5) in ``--regions`` regions (4), ``--instances``
instances in each account and region (3), made in the sandbox (tests/sandbox/organizations.py:
``seed_organization``, then each account's instances with that account's assumed-role credentials).
Then, with the sandbox's AWS-like mode on for every measured run (tests/sandbox/limits.py, as
bench/aws.py: EC2's token buckets per account and region, 0.02 s a call to EC2, 0.04 s to IAM,
0.02 s to STS and CloudWatch), from full buckets each time:

* ``keyless.aws, forks 1`` and ``forks 10``: playbooks/audit.yml, as a user runs it over many
  accounts: ``ansible-playbook -i <file>.keyless_accounts.yml -f N playbooks/audit.yml``. The
  inventory is the keyless.aws.accounts plugin's file with a static list of the accounts (the
  plugin makes no AWS call for a static list; the Organizations source would add its ListAccounts
  calls to the inventory parse, not to the audit). One host per account and region; each assumes
  its role (playbooks/tasks/target.yml) and the one report covers them all.
* ``amazon.aws loop``: the same organisation audited as a user writes it by hand with amazon.aws
  (bench/playbooks/audit_amazon_loop.yml): one play on localhost, one include per target,
  sts_assume_role then ec2_instance_info. It does less than audit.yml (instances only: their
  profile and metadata options; no launch templates, account defaults, IMDSv1 usage, profiles,
  roles): the table says so.

Each run is checked: audit.yml's report must name every host with no failed one and count every
instance (and the two instance findings the seed planted); the loop's output must list every
instance with its account and region. The contenders alternate per repetition; medians.

    .venv/bin/python bench/forks.py                  # what make bench-aws runs after bench/aws.py
    .venv/bin/python bench/forks.py --accounts 2 --regions 1 --instances 1 --reps 1   # smoke

Writes bench/results/forks-table.md, bench/results/forks.json and the logs under
bench/results/forks/logs/. Exit status: 0 when every run did its job, 1 otherwise.
"""

import argparse
import collections
import datetime
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run  # noqa: E402  (bench/run.py: the Bench's environment, machine(); it puts tests/ on the path)
from run import AMAZON, BIN, OURS, PLAYBOOKS, ROOT, median  # noqa: E402

from sandbox.limits import DEFAULT_LATENCY  # noqa: E402
from sandbox.organizations import client_for, credentials_for, seed_organization  # noqa: E402
from sandbox.seed import AMI, EC2_TRUST  # noqa: E402

AUDIT = os.path.join(ROOT, "playbooks", "audit.yml")
AMAZON_PLAYBOOK = os.path.join(PLAYBOOKS, "audit_amazon_loop.yml")
REGIONS = ("us-east-1", "eu-west-1", "eu-central-1", "ap-southeast-2", "us-west-2", "ap-northeast-1",
           "ca-central-1", "sa-east-1")
PROFILE = "bench-app"  # each account's profile, carried by every instance of a target but its first
THROTTLE_STATUSES = (503, 400)  # EC2 RequestLimitExceeded, IAM Throttling
# The variants, in the table's order: (key, contender, forks).
VARIANTS = (("forks1", OURS, 1), ("forks10", OURS, 10), ("loop", AMAZON, 1))
TITLES = {"forks1": "keyless.aws audit.yml, forks 1", "forks10": "keyless.aws audit.yml, forks 10",
          "loop": "amazon.aws loop (by hand), one host"}


# ---- the organisation -------------------------------------------------------------------------


def seed(sandbox, accounts, regions, instances):
    """The organisation: ``accounts`` members, in each of ``regions`` ``instances`` instances, the
    first of each target (account and region) without a profile and with IMDSv1 allowed
    (``HttpTokens=optional``), the others with the account's profile and IMDSv2 required.

    Returns (org, targets): targets, one per account and region, in the inventory's order:
    {"account_id", "name", "region", "role_arn", "instances": {id: {"profile": ARN or None,
    "http_tokens"}}}."""
    org = seed_organization(sandbox, ["bench{0}".format(index + 1) for index in range(accounts)])
    targets = []
    with sandbox.rules.configured({"propagation_seconds": 0}):  # a profile EC2 knows, as minutes later
        for account in org["accounts"]:
            credentials = credentials_for(sandbox, account["id"], session_name="bench-seed")
            iam = client_for(sandbox, credentials, "iam")
            iam.create_role(RoleName=PROFILE, AssumeRolePolicyDocument=EC2_TRUST)
            profile_arn = iam.create_instance_profile(InstanceProfileName=PROFILE)["InstanceProfile"]["Arn"]
            iam.add_role_to_instance_profile(InstanceProfileName=PROFILE, RoleName=PROFILE)
            for region in regions:
                ec2 = client_for(sandbox, credentials, "ec2", region_name=region)
                found = {}
                reply = ec2.run_instances(ImageId=AMI, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                                          MetadataOptions={"HttpTokens": "optional"})
                found[reply["Instances"][0]["InstanceId"]] = {"profile": None, "http_tokens": "optional"}
                if instances > 1:
                    reply = ec2.run_instances(ImageId=AMI, InstanceType="t3.micro", MinCount=instances - 1,
                                              MaxCount=instances - 1, MetadataOptions={"HttpTokens": "required"},
                                              IamInstanceProfile={"Name": PROFILE})
                    for instance in reply["Instances"]:
                        found[instance["InstanceId"]] = {"profile": profile_arn, "http_tokens": "required"}
                targets.append({"account_id": account["id"], "name": account["name"], "region": region,
                                "role_arn": account["role_arn"], "instances": found})
    return org, targets


def write_inventory(path, org, regions):
    """The keyless.aws.accounts plugin's file: a static list of the member accounts (no AWS call),
    the role Organizations made in each (the plugin's default role_name)."""
    lines = ["---", "# bench/forks.py: the organisation's member accounts in its regions, one host per pair.",
             "plugin: keyless.aws.accounts", "regions:"]
    lines += ["  - {0}".format(region) for region in regions]
    lines.append("accounts:")
    for account in org["accounts"]:
        lines += ['  - id: "{0}"'.format(account["id"]), "    name: {0}".format(account["name"])]
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def host_name(target):
    return "{0}-{1}".format(target["name"], target["region"])  # the plugin's default hostname_template


# ---- the checks -------------------------------------------------------------------------------


def audit_problem(report_file, targets):
    """None when audit.yml's one report covers every target, none failed, with every instance
    counted and the findings the seed planted; else what is wrong. Returns (problem, seen)."""
    try:
        with open(report_file) as handle:
            report = json.load(handle)
    except (OSError, ValueError) as exc:
        return "no report: {0}".format(exc), {}
    by_host = dict((host_name(t), t) for t in targets)
    seen = {"targets": len(report.get("targets", [])), "failed_targets": len(report.get("failed_targets", [])),
            "instances": sum(int(t["checked"]["instances"]) for t in report.get("targets", [])),
            "findings": dict((k, v) for k, v in sorted(report.get("counts", {}).items()) if v)}
    if report.get("failed_targets"):
        return "failed targets: {0}".format(", ".join(report["failed_targets"])), seen
    got = sorted(t["target"] for t in report.get("targets", []))
    if got != sorted(by_host):
        return "the report's targets {0} are not the inventory's {1}".format(got, sorted(by_host)), seen
    for target in report["targets"]:
        expected = by_host[target["target"]]
        if (target["account_id"], target["region"]) != (expected["account_id"], expected["region"]):
            return "{0} audited {1} {2}".format(target["target"], target["account_id"], target["region"]), seen
        if int(target["checked"]["instances"]) != len(expected["instances"]):
            return "{0}: {1} instances, {2} seeded".format(
                target["target"], target["checked"]["instances"], len(expected["instances"])), seen
    planted = collections.Counter()
    for target in targets:
        for instance in target["instances"].values():
            planted["instance_without_profile"] += instance["profile"] is None
            planted["instance_allows_imdsv1"] += instance["http_tokens"] != "required"
    found = sorted((f["account_id"], f["region"], f["resource"]) for f in report.get("findings", [])
                   if f["kind"] == "instance_without_profile")
    wanted = sorted((t["account_id"], t["region"], i) for t in targets for i, v in t["instances"].items()
                    if v["profile"] is None)
    if found != wanted:
        return "instance_without_profile findings {0}, seeded {1}".format(found[:3], wanted[:3]), seen
    for kind, count in planted.items():
        if report["counts"].get(kind) != count:
            return "{0}: {1} found, {2} seeded".format(kind, report["counts"].get(kind), count), seen
    return None, seen


def loop_problem(result_file, targets):
    """None when the amazon.aws loop listed every instance in its own account and region, with its
    profile and metadata options as seeded; else what is wrong. Returns (problem, seen)."""
    try:
        with open(result_file) as handle:
            rows = [json.loads(line) for line in handle if line.strip()]
    except (OSError, ValueError) as exc:
        return "no result: {0}".format(exc), {}
    seen = {"targets": len(set((r["account_id"], r["region"]) for r in rows)), "failed_targets": 0,
            "instances": len(rows),
            "findings": dict((k, v) for k, v in sorted(collections.Counter(
                kind for r in rows for kind in ("instance_without_profile", "instance_allows_imdsv1")
                if r[kind]).items()) if v)}
    got = sorted((r["account_id"], r["region"], r["instance_id"], r["profile"], r["http_tokens"]) for r in rows)
    wanted = sorted((t["account_id"], t["region"], i, v["profile"], v["http_tokens"])
                    for t in targets for i, v in t["instances"].items())
    if got != wanted:
        missing = sorted(set(wanted) - set(got))
        extra = sorted(set(got) - set(wanted))
        return "{0} instances listed, {1} seeded; missing {2}, unexpected {3}".format(
            len(got), len(wanted), missing[:2], extra[:2]), seen
    return None, seen


# ---- one run ----------------------------------------------------------------------------------


class ForksBench(run.Bench):
    """Runs ansible-playbook with an inventory and --forks, the AWS-like mode on for the run."""

    def __init__(self, sandbox, out, targets, inventory):
        super().__init__(sandbox, out)
        self.targets = targets
        self.inventory = inventory

    def run_one(self, key, rep):
        contender, forks = next((c, f) for k, c, f in VARIANTS if k == key)
        label = "forks-{0}-r{1}".format(key, rep)
        work = os.path.join(self.out, label)
        os.makedirs(work, exist_ok=True)
        if contender == OURS:
            result = os.path.join(work, "keyless-audit.json")
            command = [os.path.join(BIN, "ansible-playbook"), "-i", self.inventory, "-f", str(forks),
                       "-e", "ansible_python_interpreter=" + sys.executable, "-e", "audit_report_dir=" + work, AUDIT]
        else:
            result = os.path.join(work, "instances.jsonl")
            variables = {"bench_targets": [{"account_id": t["account_id"], "region": t["region"],
                                            "role_arn": t["role_arn"]} for t in self.targets],
                         "bench_result_file": result}
            vars_file = os.path.join(self.logs, label + ".vars.json")
            with open(vars_file, "w") as handle:
                json.dump(variables, handle)
            command = [os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local", "-f", str(forks),
                       "-e", "ansible_python_interpreter=" + sys.executable, "-e", "@" + vars_file, AMAZON_PLAYBOOK]
        env = self.env()
        env["ANSIBLE_FORKS"] = str(forks)
        with self.sandbox.limits.aws_like() as limits:
            status = limits.status()
            self.sandbox.app.clear_log()
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.monotonic()
            completed = subprocess.run(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       check=False)
            seconds = time.monotonic() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            calls = [dict(c) for c in self.sandbox.calls() if c["service"] is not None]
            stats = limits.stats()
        output = completed.stdout.decode("utf-8", "replace")
        log = os.path.join(self.logs, label + ".log")
        with open(log, "w") as handle:
            handle.write(output)
        if completed.returncode != 0:
            problem, seen = "ansible-playbook exited {0} (log: {1})".format(
                completed.returncode, os.path.relpath(log, ROOT)), {}
        elif contender == OURS:
            problem, seen = audit_problem(result, self.targets)
        else:
            problem, seen = loop_problem(result, self.targets)
        refused = [c for c in calls
                   if c["status"] in THROTTLE_STATUSES and str(c.get("injected", "")).startswith("limits:")]
        by_action = collections.Counter("{0}:{1}".format(c["service"], c["action"]) for c in calls)
        record = {
            "variant": key, "contender": contender, "forks": forks, "rep": rep,
            "hosts": len(self.targets) if contender == OURS else 1,
            "wall_seconds": round(seconds, 3),
            "cpu_seconds": round(after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime, 3),
            "api_calls": len(calls), "throttled": len(refused),
            "by_action": dict(sorted(by_action.items())),
            "statuses": dict(sorted(collections.Counter(str(c["status"]) for c in calls).items())),
            "limits_latency": status["latency"], "limits_stats": stats,
            "returncode": completed.returncode, "ok": problem is None, "problems": [problem] if problem else [],
            "seen": seen, "load_average": run._load(),
        }
        self.records.append(record)
        print("  {0:<36} rep {1}  {2:7.2f} s  cpu {3:6.2f} s  {4:4d} calls  {5} instances  {6}".format(
            TITLES[key], rep, seconds, record["cpu_seconds"], len(calls), seen.get("instances", "?"),
            "ok" if problem is None else "FAILED: " + problem), flush=True)
        return record


# ---- figures ----------------------------------------------------------------------------------


def summarize(records, targets=None):
    rows = []
    for key, contender, forks in VARIANTS:
        runs = [r for r in records if r["variant"] == key]
        good = [r for r in runs if r["ok"]]
        rows.append({
            "variant": key, "title": TITLES[key], "contender": contender, "forks": forks,
            "hosts": runs[0]["hosts"] if runs else None, "runs": len(runs), "failed": len(runs) - len(good),
            "wall_seconds": median([r["wall_seconds"] for r in good]),
            "cpu_seconds": median([r["cpu_seconds"] for r in good]),
            "api_calls": median([r["api_calls"] for r in good]),
            "throttled": median([r["throttled"] for r in good]),
            "instances": median([r["seen"]["instances"] for r in good]),
            "cpu_per_target": _per(median([r["cpu_seconds"] for r in good]), targets),
            "calls_per_target": _per(median([r["api_calls"] for r in good]), targets),
            "errors": sorted(set(p[:200] for r in runs for p in r["problems"])),
        })
    by_key = dict((r["variant"], r) for r in rows)
    loop = by_key["loop"]["wall_seconds"]
    for row in rows:
        row["wall_vs_loop"] = _ratio(row["wall_seconds"], loop)
    return rows


def _per(value, targets):
    """A figure per target (account and region), whoever did the job: audit.yml's hosts or the loop's
    includes."""
    return None if value is None or not targets else round(value / len(targets), 3)


def _ratio(value, base):
    return None if value is None or not base else round(value / base, 3)


def same_calls(records):
    """Did forks 10 make the same calls (per service and action) as forks 1, in every repetition?
    (True, text) or (False, text)."""
    pairs = []
    for rep in sorted(set(r["rep"] for r in records)):
        one = next((r for r in records if r["variant"] == "forks1" and r["rep"] == rep and r["ok"]), None)
        ten = next((r for r in records if r["variant"] == "forks10" and r["rep"] == rep and r["ok"]), None)
        if one and ten:
            pairs.append((rep, one["by_action"], ten["by_action"]))
    if not pairs:
        return None, "no successful pair of runs"
    differing = [(rep, a, b) for rep, a, b in pairs if a != b]
    if not differing:
        return True, "the same {0} calls in each of {1} repetition(s)".format(sum(pairs[0][1].values()), len(pairs))
    rep, a, b = differing[0]
    diff = dict((k, (a.get(k, 0), b.get(k, 0))) for k in sorted(set(a) | set(b)) if a.get(k, 0) != b.get(k, 0))
    return False, "repetition {0} differs (forks 1, forks 10): {1}".format(rep, diff)


def _cell(value, fmt="{0:.2f}"):
    return "-" if value is None else fmt.format(value)


def table(rows):
    lines = ["| run | hosts | forks | wall s | CPU s | CPU s / target | API calls | calls / target | throttled "
             "| instances seen | wall / amazon.aws loop | runs |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        runs = "{0}".format(r["runs"])
        if r["failed"]:
            runs += " ({0} FAILED: {1})".format(r["failed"], "; ".join(r["errors"]).replace("|", "/"))
        if not r["runs"]:
            continue
        lines.append("| {0} | {1} | {2} | {3} | {4} | {5} | {6} | {7} | {8} | {9} | {10} | {11} |".format(
            r["title"], _cell(r["hosts"], "{0:g}"), r["forks"], _cell(r["wall_seconds"]), _cell(r["cpu_seconds"]),
            _cell(r["cpu_per_target"]), _cell(r["api_calls"], "{0:g}"), _cell(r["calls_per_target"], "{0:.1f}"),
            _cell(r["throttled"], "{0:g}"), _cell(r["instances"], "{0:g}"), _cell(r["wall_vs_loop"], "{0:.3f}"), runs))
    return "\n".join(lines)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=5, help="member accounts (default 5)")
    parser.add_argument("--regions", type=int, default=4,
                        help="regions per account, 1 to {0} (default 4: {1})".format(
                            len(REGIONS), ", ".join(REGIONS[:4])))
    parser.add_argument("--instances", type=int, default=3, help="instances per account and region (default 3)")
    parser.add_argument("--reps", type=int, default=2, help="repetitions of each run (default 2)")
    parser.add_argument("--variants", default=",".join(key for key, _contender, _forks in VARIANTS),
                        help="the runs to make, comma-separated, of forks1, forks10, loop (default all); for "
                             "example forks10,loop at 100 hosts, where forks 1 takes long and says nothing new")
    parser.add_argument("--out", default=os.path.join(HERE, "results"),
                        help="results folder (default bench/results): forks-table.md, forks.json, forks/logs/")
    args = parser.parse_args(argv)
    if not 1 <= args.regions <= len(REGIONS):
        parser.error("--regions: 1 to {0}".format(len(REGIONS)))
    if args.accounts < 1 or args.instances < 1 or args.reps < 1:
        parser.error("--accounts, --instances and --reps: at least 1")
    known = [key for key, _contender, _forks in VARIANTS]
    args.variants = [key.strip() for key in args.variants.split(",") if key.strip()]
    if not args.variants or set(args.variants) - set(known):
        parser.error("--variants: some of {0}, comma-separated".format(", ".join(known)))
    return args


def main(argv=None):
    args = parse_args(argv)
    regions = list(REGIONS[:args.regions])
    os.makedirs(args.out, exist_ok=True)
    started = time.monotonic()
    started_at = datetime.datetime.now(datetime.timezone.utc)
    info = run.machine()
    try:
        info["nproc"] = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        info["nproc"] = info["cpus"]
    print("make bench-aws, forks: playbooks/audit.yml over {0} accounts x {1} regions, {2} instances each, forks 1 "
          "vs 10, and the amazon.aws loop (AWS-like sandbox; moto {3}, {4} CPUs, load {5})".format(
              args.accounts, len(regions), args.instances, info["moto"], info["nproc"],
              info["load_average_at_start"]), flush=True)
    with run.Sandbox() as sandbox:
        with sandbox.transitions.instant():
            org, targets = seed(sandbox, args.accounts, regions, args.instances)
        out = os.path.join(args.out, "forks")
        os.makedirs(out, exist_ok=True)
        inventory = write_inventory(os.path.join(out, "bench.keyless_accounts.yml"), org, regions)
        bench = ForksBench(sandbox, out, targets, inventory)
        order = [key for key, _contender, _forks in VARIANTS if key in args.variants]
        for rep in range(args.reps):
            shift = rep % len(order)  # each repetition starts with another variant: drift hits all alike
            for key in order[shift:] + order[:shift]:
                bench.run_one(key, rep)
        records = bench.records
    return report(args, argv, info, regions, targets, records, started, started_at)


def report(args, argv, info, regions, targets, records, started, started_at):
    rows = summarize(records, targets)
    by_key = dict((r["variant"], r) for r in rows)
    same, same_text = same_calls(records)
    speedup = _ratio(by_key["forks1"]["wall_seconds"], by_key["forks10"]["wall_seconds"])
    cpu_ratio = _ratio(by_key["forks10"]["cpu_seconds"], by_key["forks1"]["cpu_seconds"])
    latency = next((r["limits_latency"] for r in records if r.get("limits_latency")), DEFAULT_LATENCY)
    instances = sum(len(t["instances"]) for t in targets)
    total = time.monotonic() - started
    info["load_average_at_end"] = run._load()
    loads = [r["load_average"] for r in records if r.get("load_average") is not None]
    command = "bench/forks.py " + " ".join(argv if argv is not None else sys.argv[1:])
    ratios = {
        "speedup_forks10_vs_forks1": speedup,
        "forks10_vs_amazon_loop": by_key["forks10"]["wall_vs_loop"],
        "forks1_vs_amazon_loop": by_key["forks1"]["wall_vs_loop"],
        "cpu_forks10_vs_forks1": cpu_ratio,
        "same_calls_forks10_forks1": same,
    }
    text = "\n".join([
        "{0} accounts x {1} regions ({2}) = {3} hosts, {4} instances each ({5} in all); AWS-like sandbox "
        "(tests/sandbox/limits.py on for every run: EC2 token buckets per account and region, {6} s a call to EC2, "
        "{7} s to IAM, {8} s to STS and CloudWatch); medians of {9} run(s); wall = the whole ansible-playbook "
        "command; API calls and throttled answers from the sandbox's request log.".format(
            args.accounts, len(regions), ", ".join(regions), len(targets), args.instances, instances,
            latency.get("ec2", latency.get("*", 0)), latency.get("iam", latency.get("*", 0)),
            latency.get("sts", latency.get("*", 0)), args.reps),
        "",
        table(rows),
        "",
        "- speed-up, forks 10 against forks 1: {0} (wall {1} s vs {2} s; CPU {3} s vs {4} s)".format(
            _cell(speedup, "{0:.2f}x"), _cell(by_key["forks1"]["wall_seconds"]),
            _cell(by_key["forks10"]["wall_seconds"]), _cell(by_key["forks1"]["cpu_seconds"]),
            _cell(by_key["forks10"]["cpu_seconds"])),
        "- keyless.aws forks 10 / amazon.aws loop: {0}; forks 1 / amazon.aws loop: {1}".format(
            _cell(by_key["forks10"]["wall_vs_loop"], "{0:.3f}"), _cell(by_key["forks1"]["wall_vs_loop"], "{0:.3f}")),
        "- forks 10 made the same API calls as forks 1: {0}".format(
            {True: "yes", False: "NO", None: "not measured"}[same] + " (" + same_text + ")"),
        "- not the same job: audit.yml reads, per host, instances and their profiles, launch templates and their "
        "user data, the account's metadata defaults, IMDSv1 usage (CloudWatch), instance profiles, their roles' "
        "trust, in one keyless.aws.audit_info run per host, and writes one report (JSON, Markdown) with every kind "
        "of finding but instance_static_keys (which needs the instances as hosts); the amazon.aws loop "
        "lists the instances with their profile and metadata options only (two kinds), and it runs on one host, so "
        "forks do not apply to it.",
        "",
        run.machine_line(total, info, loads, span="after the runs"),
    ])
    print("\n" + text, flush=True)
    with open(os.path.join(args.out, "forks-table.md"), "w") as handle:
        handle.write(text + "\n")
    with open(os.path.join(args.out, "forks.json"), "w") as handle:
        json.dump({"command": command.strip(), "settings": dict(vars(args), region_names=regions),
                   "machine": info, "started": started_at.isoformat(timespec="seconds"),
                   "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                   "total_seconds": round(total, 1), "hosts": len(targets), "instances": instances,
                   "rows": rows, "ratios": ratios, "same_calls": same_text, "runs": records}, handle, indent=1)
    print("Raw figures: {0}; logs: {1}".format(os.path.relpath(os.path.join(args.out, "forks.json"), ROOT),
                                               os.path.relpath(os.path.join(args.out, "forks", "logs"), ROOT)))
    return 0 if records and all(r["ok"] for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
