"""make bench-aws, the guard row: seconds from an offending call to the state put right, through a
real ansible-rulebook (extensions/eda/rulebooks/keyless_guard.yml) reading the sandbox's CloudTrail
events from the SQS queue of playbooks/guard_setup.yml.

The drift: an instance launched without a profile, allowing IMDSv1 (RunInstances, tagged team=web).
Put right: it carries the profile web and requires IMDSv2. Each trial makes that call, then reads the
sandbox's EC2 (in process, no API call, every 0.05 s) until the instance is right; the seconds from
just before the call to the first read that sees it right, and the EC2, IAM and STS calls made
meanwhile (the remediation's; the rulebook's SQS polling counted apart). Trials one after the other,
each waiting for the one before to be handled (its line in the report file, or its instance right).

Contenders, each in its own ansible-rulebook process (started once, its start-up reported apart):

* ``keyless.aws``: playbooks/guard_remediate.yml, as the docs set it up (the guard assumes its role
  keyless-guard; keyless_guard_profiles maps team=web to web).
* ``amazon.aws``: bench/playbooks/guard_amazon.yml, the same rulebook running what a user writes with
  amazon.aws (amazon.aws.ec2_instance with instance_ids, iam_instance_profile, metadata_options):
  every launched instance gets the one profile, no tag read, no exemption, no other event.

The sandbox's AWS-like mode is on for the trials (tests/sandbox/limits.py: EC2's token buckets, 0.02 s
a call to EC2, 0.04 s to IAM, 0.02 s to STS); the queue is polled every ``--poll`` seconds (1).
CloudTrail's own delay (seconds to minutes on AWS) is not in these figures: the sandbox publishes an
event as it answers the call.

    .venv/bin/python bench/guard.py                 # what make bench-aws runs (10 trials each)
    .venv/bin/python bench/guard.py --trials 2      # smoke

Writes bench/results/guard-table.md, bench/results/guard.json and the logs under
bench/results/guard/. Exit status: 0 when every trial was put right, 1 otherwise, 3 when the machine
lacks what the rulebook's runtime needs (scripts/rulebook-venv.sh says what).
"""

import argparse
import collections
import datetime
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run  # noqa: E402  (bench/run.py: the Bench's environment, machine(); it puts tests/ on the path)
from run import AMAZON, OURS, PLAYBOOKS, ROOT, median  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

from guard_support import GuardRulebook, RuntimeMissing, build_runtime, launch, make_guard_role, make_trail  # noqa: E402
from sandbox.limits import DEFAULT_LATENCY  # noqa: E402
from sandbox.seed import ACCOUNT, make_profile  # noqa: E402

SETUP = os.path.join(ROOT, "playbooks", "guard_setup.yml")
PLAYBOOK = {OURS: "playbooks/guard_remediate.yml", AMAZON: os.path.join(PLAYBOOKS, "guard_amazon.yml")}
PROFILE = "web"
TARGET_SECONDS = 10.0  # issue 24: under 10 s from the call to the state put right, queue polled every 1-2 s
TRIAL_TIMEOUT = 120


def instance_right(instance_id, region):
    """Whether the sandbox's EC2 (moto, read in process: no API call) has the instance carrying the
    profile and requiring IMDSv2."""
    from moto.ec2.models import ec2_backends

    backend = ec2_backends[ACCOUNT][region]
    instance = backend.get_instance(instance_id)
    association = backend.iam_instance_profile_associations.get(instance_id)
    return (instance.metadata_options.http_tokens == "required" and association is not None
            and association.iam_instance_profile.name == PROFILE)


def trial(sandbox, guard, ec2, contender, index):
    """One drift, timed until it is put right; the trial's record."""
    mark = len(sandbox.app.log)
    handled = len(guard.lines())
    started = time.monotonic()
    [instance_id] = launch(ec2, tokens="optional", team="web")
    called = time.monotonic()
    deadline = called + TRIAL_TIMEOUT
    right = False
    while time.monotonic() < deadline:
        if instance_right(instance_id, sandbox.REGION):
            right = True
            break
        time.sleep(0.05)
    seconds = time.monotonic() - started
    # The remediation's last calls (its report line, for ours) may come after the state is right: wait
    # for the run to end before counting its calls and starting the next trial.
    if contender == OURS:
        until = time.monotonic() + TRIAL_TIMEOUT
        while len(guard.lines()) <= handled and time.monotonic() < until:
            time.sleep(0.05)
    else:
        time.sleep(2.0)  # guard_amazon.yml writes no report: its run ends within this after its change
    calls = [c for c in sandbox.calls(since=mark) if c["service"] in ("ec2", "iam", "sts")]
    mine = 1  # the RunInstances this trial made
    by_action = collections.Counter("{0}:{1}".format(c["service"], c["action"]) for c in calls)
    by_action["ec2:RunInstances"] -= mine
    by_action = dict((k, v) for k, v in sorted(by_action.items()) if v)
    return {"contender": contender, "trial": index, "instance_id": instance_id, "ok": right,
            "seconds": round(seconds, 3), "call_seconds": round(called - started, 3),
            "calls": sum(by_action.values()), "calls_by_action": by_action,
            "throttled": sum(1 for c in calls if c.get("status") in (400, 503) and "Limit" in json.dumps(c))}


def run_contender(sandbox, wrapper, out, contender, trials, poll):
    workdir = os.path.join(out, contender.replace(".", "-"))
    os.makedirs(workdir, exist_ok=True)
    inventory_vars = {"keyless_guard_profiles": [{"tags": {"team": "web"}, "instance_profile": PROFILE}],
                      "keyless_assume_role_name": "keyless-guard"}
    rulebook_vars = {"keyless_guard_poll_seconds": poll, "keyless_guard_playbook": PLAYBOOK[contender]}
    records = []
    ec2 = sandbox.client("ec2")
    guard = GuardRulebook(sandbox, wrapper, workdir, inventory_vars, rulebook_vars)
    guard.start()
    try:
        with sandbox.limits.aws_like():
            for index in range(trials):
                records.append(trial(sandbox, guard, ec2, contender, index + 1))
                print("  {0} trial {1}: {2:.2f} s, {3} calls{4}".format(
                    contender, index + 1, records[-1]["seconds"], records[-1]["calls"],
                    "" if records[-1]["ok"] else " NOT PUT RIGHT"), flush=True)
    finally:
        guard.stop()
        with open(os.path.join(workdir, "ansible-rulebook.log"), "w", encoding="utf-8") as handle:
            handle.write(guard.output.text())
    return records, round(guard.started_seconds, 2)


def summarize(records, contender):
    mine = [r for r in records if r["contender"] == contender]
    seconds = [r["seconds"] for r in mine]
    return {"trials": len(mine), "ok": sum(1 for r in mine if r["ok"]),
            "median": round(median(seconds), 2) if seconds else None,
            "worst": round(max(seconds), 2) if seconds else None,
            "calls": median([r["calls"] for r in mine]) if mine else None}


def table(summary, start_ups, poll, latency, info):
    ours, theirs = summary[OURS], summary[AMAZON]
    met = ours["worst"] is not None and ours["worst"] < TARGET_SECONDS and ours["ok"] == ours["trials"]

    def ratio(key):
        return "{0:.2f}".format(ours[key] / theirs[key]) if ours[key] and theirs[key] else "-"

    lines = [
        "| | keyless.aws (guard_remediate.yml) | amazon.aws (by-hand playbook) | ratio |",
        "|---|---:|---:|---:|",
        "| call to state put right, median s | {0} | {1} | {2} |".format(ours["median"], theirs["median"], ratio("median")),
        "| worst s | {0} | {1} | {2} |".format(ours["worst"], theirs["worst"], ratio("worst")),
        "| API calls of the remediation (EC2, IAM, STS), median | {0} | {1} | {2} |".format(
            ours["calls"], theirs["calls"], ratio("calls")),
        "| trials put right | {0}/{1} | {2}/{3} | |".format(ours["ok"], ours["trials"], theirs["ok"], theirs["trials"]),
        "| ansible-rulebook start-up to first poll, s | {0} | {1} | |".format(start_ups[OURS], start_ups[AMAZON]),
        "",
        "Target (issue 24): median and worst under {0:.0f} s with the queue polled every 1-2 s: **{1}** "
        "(polled every {2} s).".format(TARGET_SECONDS, "met" if met else "missed", poll),
        "",
        "The drift: an instance launched without a profile, allowing IMDSv1; put right: it carries the profile "
        "and requires IMDSv2. AWS-like sandbox ({0} s a call to EC2, {1} s to IAM, {2} s to STS; EC2 token "
        "buckets); CloudTrail's own delivery delay (seconds to minutes on AWS) is not included. The amazon.aws "
        "playbook does less (one profile for every instance, no tag read, no exemption). {3}".format(
            latency.get("ec2", latency.get("*", 0)), latency.get("iam", latency.get("*", 0)),
            latency.get("sts", latency.get("*", 0)), info),
    ]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--trials", type=int, default=10, help="drifts per contender (10)")
    parser.add_argument("--poll", type=int, default=1, help="the source's delay_seconds between polls (1)")
    parser.add_argument("--out", default=os.path.join(HERE, "results"), help="where the table and the logs go")
    args = parser.parse_args(argv)
    out = os.path.abspath(args.out)
    logs = os.path.join(out, "guard")
    os.makedirs(logs, exist_ok=True)
    started = time.monotonic()
    info = run.machine()
    try:
        wrapper = build_runtime()
    except RuntimeMissing as missing:
        print("the rulebook runtime cannot be built on this machine: {0}".format(missing))
        return 3
    records, start_ups = [], {}
    with run.Sandbox() as sandbox:
        with sandbox.transitions.instant():
            make_profile(sandbox, PROFILE, settled=True)
            make_guard_role(sandbox)
            make_trail(sandbox)
            bench = run.Bench(sandbox, logs)
            _seconds, _cpu, code, output, _calls = bench.playbook(SETUP, {}, "guard-setup")
            if code != 0:
                print(output[-4000:])
                return 1
            for contender in (OURS, AMAZON):
                print("{0}: {1} trials".format(contender, args.trials), flush=True)
                mine, start_ups[contender] = run_contender(sandbox, wrapper, logs, contender, args.trials, args.poll)
                records.extend(mine)
    summary = dict((c, summarize(records, c)) for c in (OURS, AMAZON))
    info["load_average_at_end"] = run._load()  # pylint: disable=protected-access
    text = table(summary, start_ups, args.poll, DEFAULT_LATENCY, run.machine_line(time.monotonic() - started, info) + (
        " The remediation itself runs in the rulebook's virtualenv (.build/rulebook-venv: ansible-core and "
        "amazon.aws of scripts/requirements-rulebook*.txt)."))
    with open(os.path.join(out, "guard-table.md"), "w", encoding="utf-8") as handle:
        handle.write(text)
    with open(os.path.join(out, "guard.json"), "w", encoding="utf-8") as handle:
        json.dump({"date": datetime.datetime.now(datetime.timezone.utc).isoformat(), "poll_seconds": args.poll,
                   "summary": summary, "start_up_seconds": start_ups, "records": records}, handle, indent=1)
    print(text)
    return 0 if all(r["ok"] for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
