"""make bench-aws: keyless.aws against the amazon.aws way under EC2's rate limits (the sandbox's AWS-like mode).

``make bench`` (bench/run.py) runs against moto at moto's speed: no rate limit, about a millisecond
a call, a world no real fleet lives in. This bench turns the sandbox's AWS-like mode on
(``tests/sandbox/limits.py``: EC2's token buckets per account and region, IAM's, 20 ms a call to
EC2 and 40 ms to IAM, throttled answers as EC2 and IAM send them) for every measured run, and
compares each run with the token limit of its job: the time the account's buckets need to admit
the mutating calls the job cannot do without, whatever the tool.

Rows (see bench/README.md, "make bench-aws"):

* ``association``: attach a profile to N existing instances (first run), the swap to a second
  profile, then the swap's no-op re-run, N = 100, 500, 1000 (2000 with ``--with-2000``). Ours: one
  keyless.aws.ec2_profile_association task (bench/playbooks/association_keyless_timing.yml: the task
  of association_keyless.yml, its ``timing`` printed); amazon.aws: amazon.aws.ec2_instance in tasks
  of at most 196 instance ids (bench/playbooks/association_amazon_chunked.yml), as real EC2 makes
  its users write it. The token limit: first run, N AssociateIamInstanceProfile from the
  ``associations`` bucket, ``max(0, N - capacity) / refill`` = max(0, N - 100) / 5 s; swap on
  running instances, N ReplaceIamInstanceProfileAssociation from the ``mutating`` bucket,
  max(0, N - 50) / 5 s (the figures are read from the sandbox's live table, never copied here).
* ``role``: playbooks/provision.yml (the keyless.aws.instance_profile role) against
  bench/playbooks/role_amazon.yml, N = 10 and 100, first run and re-run, as bench/run.py's role
  row; it also counts the ec2_profile_association and ec2_metadata_options tasks our role ran.

The limits are OFF while a trial seeds its fleet (RunInstances under the limits would itself be
throttled) and while the bench checks the fleet after a run; every trial starts from a reset
sandbox, and every measured run from full buckets. The small sizes run first, contenders
alternating per repetition as bench/run.py does; then the role row; then N >= 500, one
repetition (keyless.aws first, then amazon.aws as far as ``--budget`` lets it).

    .venv/bin/python bench/aws.py                     # what make bench-aws runs
    .venv/bin/python bench/aws.py --sizes 10 --reps 1 --role-n 10 --role-reps 1     # smoke

Exit status: 0 when every keyless.aws run did its job (amazon.aws runs that fail are reported with
their error, as a user on real EC2 would meet them), 1 otherwise.
"""

import argparse
import base64
import collections
import datetime
import json
import os
import re
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run  # noqa: E402  (bench/run.py: the Bench, the fleet helpers; it puts tests/ on the path)
from run import AMAZON, CONTENDERS, OURS, PLAYBOOKS, PROFILE_A, PROFILE_B, ROOT  # noqa: E402
from run import Bench, fleet_problem, launch, median  # noqa: E402

from sandbox.limits import DEFAULT_BUCKETS, DEFAULT_LATENCY, bucket_for  # noqa: E402
from sandbox.seed import make_profile  # noqa: E402

OURS_PLAYBOOK = os.path.join(PLAYBOOKS, "association_keyless_timing.yml")
AMAZON_PLAYBOOK = os.path.join(PLAYBOOKS, "association_amazon_chunked.yml")
CHUNK = 196  # ids per amazon.aws.ec2_instance task (association_amazon_chunked.yml)
LARGE = 500  # from this N: one repetition, amazon.aws under the time budget
TARGET_LIMIT_RATIO = 1.1
TARGET_THROTTLED_SHARE = 0.05
ROLE_TARGETS = {10: 0.8, 100: 0.3}  # N: re-run at most this share of the amazon.aws-only playbook (issue 22)
ROLE_MODULES = ("ec2_profile_association", "ec2_metadata_options")
THROTTLE_STATUSES = (503, 400)  # EC2 RequestLimitExceeded, IAM Throttling
TIMING_MARK = re.compile(r"BENCH_TIMING=([A-Za-z0-9+/=]+)")
MODULE_FILE = re.compile(r"^AnsiballZ_(.+)\.py$")

# The order they run in: the no-op re-run is the swap's, so that a time budget that ends the
# trial early costs the re-run (the cheapest to do without), never the swap.
PHASES = (("first", PROFILE_A, True), ("swap", PROFILE_B, True), ("rerun", PROFILE_B, False))
PHASE_ORDER = tuple(p[0] for p in PHASES)
PHASE_TITLES = run.PHASE_TITLES
# The mutating call each instance needs in a phase of the association row (the rerun needs none).
PHASE_ACTIONS = {"first": "AssociateIamInstanceProfile", "swap": "ReplaceIamInstanceProfileAssociation"}
OURS_SLACK = 15.0  # seconds reserved per run of ours beyond its token limit, in the budget's estimate


# ---- the token limit ------------------------------------------------------------------------


def token_limit(buckets, n, phase):
    """(seconds, bucket, capacity, refill) the account's EC2 bucket needs to admit the phase's N
    mutating calls, from a full bucket: max(0, N - capacity) / refill; None for a phase that
    needs no mutating call. ``buckets``: the limits' table ({"ec2": {bucket: {capacity, refill}}})."""
    action = PHASE_ACTIONS.get(phase)
    if action is None:
        return None
    bucket = bucket_for("ec2", action)
    figures = buckets["ec2"][bucket]
    return max(0.0, n - figures["capacity"]) / figures["refill"], bucket, figures["capacity"], figures["refill"]


def limit_text(buckets):
    lines = []
    for phase in ("first", "swap"):
        action = PHASE_ACTIONS[phase]
        bucket = bucket_for("ec2", action)
        figures = buckets["ec2"][bucket]
        lines.append("{0}: N {1}, bucket `{2}` ({3:g} tokens, {4:g} a second): max(0, N - {3:g}) / {4:g} s".format(
            PHASE_TITLES[phase], action, bucket, figures["capacity"], figures["refill"]))
    return "; ".join(lines)


# ---- one run ----------------------------------------------------------------------------------


def module_runs(remote_tmp):
    """{module: tasks run} from the AnsiballZ files ansible-playbook kept (one temporary folder per
    task run; the items of one loop share it)."""
    counts = collections.Counter()
    if os.path.isdir(remote_tmp):
        for folder in os.listdir(remote_tmp):
            path = os.path.join(remote_tmp, folder)
            if os.path.isdir(path):
                for name in os.listdir(path):
                    match = MODULE_FILE.match(name)
                    if match:
                        counts[match.group(1)] += 1
    return dict(sorted(counts.items()))


def module_timing(output):
    """The ``timing`` our module returned, as association_keyless_timing.yml prints it, or None."""
    match = TIMING_MARK.search(output)
    if not match:
        return None
    try:
        return json.loads(base64.b64decode(match.group(1)).decode("utf-8")) or None
    except ValueError:
        return None


def first_error(output):
    """The first failure's message in an ansible-playbook output (YAML results), or None."""
    lines = output.splitlines()
    for index, line in enumerate(lines):
        if line.startswith(("fatal: ", "failed: ")):
            for later in lines[index + 1:index + 60]:
                stripped = later.strip()
                if stripped.startswith("msg:"):
                    return stripped[4:].strip().strip("'\"")[:400]
            return line[:400]
    return None


class AwsBench(Bench):
    """bench/run.py's Bench with the AWS-like mode on for every measured run (and only then)."""

    def __init__(self, sandbox, out):
        super().__init__(sandbox, out)
        self.remote_tmp = os.path.join(out, "remote-tmp")
        self._run_env = {}
        self.last = {}

    def env(self):
        env = super().env()
        env.update(self._run_env)
        return env

    def playbook(self, playbook, variables, label):
        """One run from full buckets with the limits on: the limits' table and statistics, the
        module tasks it ran (ansible-playbook keeps its module files in a folder of this run's)."""
        remote = os.path.join(self.remote_tmp, label)
        shutil.rmtree(remote, ignore_errors=True)
        self._run_env = {"ANSIBLE_KEEP_REMOTE_FILES": "1", "ANSIBLE_REMOTE_TMP": remote}
        try:
            with self.sandbox.limits.aws_like() as limits:
                status = limits.status()
                result = super().playbook(playbook, variables, label)
                stats = limits.stats()
        finally:
            self._run_env = {}
        self.last = {"buckets": status["buckets"], "latency": status["latency"], "limits_stats": stats, "modules": module_runs(remote),
                     "output": result[3], "calls": result[4]}
        shutil.rmtree(remote, ignore_errors=True)
        return result

    def measure(self, row, contender, n, rep, phase, playbook, variables, verify, expect_change):
        record = super().measure(row, contender, n, rep, phase, playbook, variables, verify, expect_change)
        calls, output = self.last["calls"], self.last["output"]
        refused = [c for c in calls if c["status"] in THROTTLE_STATUSES
                   and str(c.get("injected", "")).startswith("limits:")]
        record.update(
            limits_on=True,
            limits_buckets=self.last["buckets"],
            limits_latency=self.last["latency"],
            limits_stats=self.last["limits_stats"],
            throttled=len(refused),
            throttled_by_bucket=dict(sorted(collections.Counter(c["injected"] for c in refused).items())),
            throttled_share=round(len(refused) / len(calls), 4) if calls else None,
            module_runs=self.last["modules"],
            module_timing=module_timing(output) if contender == OURS and row == "association" else None,
            error=None if record["ok"] else (first_error(output) or "; ".join(record["problems"])),
        )
        limit = token_limit(self.last["buckets"], n, phase) if row == "association" else None
        record["limit_seconds"] = round(limit[0], 3) if limit else None
        record["limit_bucket"] = "{0} ({1:g}/{2:g})".format(limit[1], limit[2], limit[3]) if limit else None
        record["limit_ratio"] = round(record["wall_seconds"] / limit[0], 3) if limit and limit[0] > 0 else None
        parts = ["{0} throttled ({1:.1f} %)".format(len(refused), 100.0 * (record["throttled_share"] or 0))]
        if record["limit_seconds"] is not None:
            parts.insert(0, "token limit {0:.1f} s{1}".format(
                record["limit_seconds"], ", {0:.2f}x".format(record["limit_ratio"]) if record["limit_ratio"] else ""))
        timing = record["module_timing"]
        if timing:
            parts.append("module: {0} s, paced {1} s, rates {2}".format(
                (timing.get("seconds") or {}).get("total"), timing.get("paced_seconds"), timing.get("request_rates")))
        if row == "role" and contender == OURS:
            parts.append("tasks: " + ", ".join("{0} {1}".format(m, record["module_runs"].get(m, 0)) for m in ROLE_MODULES))
        if record["error"]:
            parts.append("error: " + record["error"][:200])
        print("      " + "; ".join(parts), flush=True)
        return record

    def association_trial(self, contender, n, rep, allow=None):
        """A reset sandbox (limits off), two profiles, N fresh instances; then first run, swap, and
        the swap's no-op re-run, each from full buckets. ``allow(phase)``: None, or (short, detail)
        saying why that phase is skipped. A phase skipped or failed skips the phases after it (they
        build on it)."""
        def skip_from(index, reason):
            for later in PHASES[index:]:
                self.skip("association", contender, n, rep, later[0], reason)

        reason = allow(PHASES[0][0]) if allow else None
        if reason:  # skipped before the fleet is seeded (N fresh instances take a while)
            return skip_from(0, reason)
        self.sandbox.reset()
        make_profile(self.sandbox, PROFILE_A)
        make_profile(self.sandbox, PROFILE_B)
        ids = launch(self.sandbox, n)
        playbook = OURS_PLAYBOOK if contender == OURS else AMAZON_PLAYBOOK
        for index, (phase, profile, expect_change) in enumerate(PHASES):
            reason = allow(phase) if allow and index else None
            if reason:
                return skip_from(index, reason)
            record = self.measure("association", contender, n, rep, phase, playbook,
                                  {"bench_instance_ids": ids, "bench_profile": profile},
                                  lambda profile=profile: fleet_problem(self.sandbox, ids, profile), expect_change)
            if not record["ok"]:
                return skip_from(index + 1, ("{0} failed".format(PHASE_TITLES[phase]), record["error"] or "see its log"))


def amazon_guard(records, n, sizes_after, args, started):
    """allow(phase) for an amazon.aws trial at N >= LARGE: why (short, detail) the phase must be
    skipped when it would not end within the budget, else None. Its wall is projected from
    amazon.aws's median for that phase at the largest smaller N (failed runs included: they took
    the time too), scaled linearly with N; the runs of ours at the larger sizes still to come are
    reserved at their token limit x 1.1 plus OURS_SLACK each."""
    reserve = sum((token_limit(DEFAULT_BUCKETS, m, phase) or (0,))[0] * TARGET_LIMIT_RATIO + OURS_SLACK
                  for m in sizes_after for phase in PHASE_ORDER)

    def allow(phase):
        if not args.budget:
            return None
        measured = [r for r in records if r["row"] == "association" and r["contender"] == AMAZON
                    and r["phase"] == phase and r["n"] < n and not r.get("skipped")]
        elapsed = time.monotonic() - started
        projected = None
        if measured:
            size = max(r["n"] for r in measured)
            projected = median([r["wall_seconds"] for r in measured if r["n"] == size]) * n / size
        if elapsed + (projected or 0) + reserve > args.budget:
            return ("time budget", "{0:.0f} s used, ~{1} s projected for this run, {2:.0f} s reserved for "
                    "keyless.aws at larger N, {3:.0f} s budget".format(
                        elapsed, "?" if projected is None else "{0:.0f}".format(projected), reserve, args.budget))
        return None

    return allow


# ---- figures ----------------------------------------------------------------------------------


def summarize(records):
    """One entry per (row, n, phase): per contender its runs, failures, skips and medians."""
    groups = collections.OrderedDict()
    for record in sorted(records, key=lambda r: (("association", "role").index(r["row"]), r["n"],
                                                 PHASE_ORDER.index(r["phase"]))):
        key = (record["row"], record["n"], record["phase"])
        groups.setdefault(key, {c: [] for c in CONTENDERS})[record["contender"]].append(record)
    rows = []
    for (row, n, phase), by_contender in groups.items():
        entry = {"row": row, "n": n, "phase": phase, "limit_seconds": None, "limit_bucket": None}
        for contender in CONTENDERS:
            key = "ours" if contender == OURS else "amazon"
            measured = [r for r in by_contender[contender] if not r.get("skipped")]
            good = [r for r in measured if r["ok"]]
            entry[key + "_runs"] = len(measured)
            entry[key + "_failed"] = len(measured) - len(good)
            entry[key + "_errors"] = sorted(set(r["error"] for r in measured if not r["ok"] and r.get("error")))
            entry[key + "_skipped"] = sorted(set("{0} ({1})".format(r["skipped"], r["skip_detail"])
                                                 for r in by_contender[contender] if r.get("skipped")))
            for field in ("wall_seconds", "cpu_seconds", "api_calls", "throttled"):
                entry["{0}_{1}".format(key, field)] = median([r[field] for r in good])
            entry[key + "_throttled_share"] = _share(entry[key + "_throttled"], entry[key + "_api_calls"])
            for r in measured:
                if r.get("limit_seconds") is not None:
                    entry["limit_seconds"], entry["limit_bucket"] = r["limit_seconds"], r["limit_bucket"]
            entry[key + "_limit_ratio"] = _ratio(entry[key + "_wall_seconds"], entry["limit_seconds"])
            # The module's own timing and the role's task counts: of the run with the median wall.
            typical = sorted(good, key=lambda r: r["wall_seconds"])[len(good) // 2] if good else None
            entry[key + "_timing"] = typical.get("module_timing") if typical else None
            entry[key + "_module_runs"] = sorted(set(
                tuple(r["module_runs"].get(m, 0) for m in ROLE_MODULES) for r in measured if r.get("module_runs")))
        entry["wall_ratio"] = _ratio(entry["ours_wall_seconds"], entry["amazon_wall_seconds"])
        rows.append(entry)
    return rows


def _ratio(value, base):
    if value is None or not base:
        return None
    return round(value / base, 3)


def _share(part, whole):
    if part is None or not whole:
        return None
    return round(part / whole, 4)


def _find(rows, row, n, phase):
    return next((r for r in rows if r["row"] == row and r["n"] == n and r["phase"] == phase), None)


def targets(rows, records, sizes, role_sizes, pending):
    """The issue's targets, reported: [{target, status: met/missed/not measured, figures}]."""
    results = []

    def add(target, ok, figures):
        results.append({"target": target, "status": "not measured" if ok is None else ("met" if ok else "missed"),
                        "figures": figures})

    for n in sizes:
        if n < LARGE:
            continue
        for phase in ("first", "swap"):
            target = "N={0} {1}: keyless.aws at most {2}x the token limit".format(
                n, PHASE_TITLES[phase], TARGET_LIMIT_RATIO)
            entry = _find(rows, "association", n, phase)
            if entry is None or entry["ours_wall_seconds"] is None or not entry["limit_seconds"]:
                add(target, None, "no successful run")
                continue
            timing = entry["ours_timing"] or {}
            add(target, entry["ours_limit_ratio"] <= TARGET_LIMIT_RATIO,
                "{0:.1f} s against {1:.1f} s ({2}): {3:.3f}x; the module itself {4} s, {5} s of it paced".format(
                    entry["ours_wall_seconds"], entry["limit_seconds"], entry["limit_bucket"],
                    entry["ours_limit_ratio"], (timing.get("seconds") or {}).get("total", "?"),
                    timing.get("paced_seconds", "?")))
    for n in sizes:
        target = "N={0}: throttled answers at most {1:g} % of keyless.aws's calls".format(
            n, 100 * TARGET_THROTTLED_SHARE)
        cells = [(phase, _find(rows, "association", n, phase)) for phase in PHASE_ORDER]
        cells = [(phase, e) for phase, e in cells if e and e["ours_api_calls"] is not None]
        if not cells:
            add(target, None, "no successful run")
            continue
        add(target, all(e["ours_throttled_share"] <= TARGET_THROTTLED_SHARE for _phase, e in cells),
            ", ".join("{0} {1:g} of {2:g} ({3:.1f} %)".format(PHASE_TITLES[phase], e["ours_throttled"],
                                                              e["ours_api_calls"], 100 * e["ours_throttled_share"])
                      for phase, e in cells))
    ours = [r for r in records if r["contender"] == OURS and not r.get("skipped")]
    failed = [r for r in ours if not r["ok"]]
    add("keyless.aws: zero failures", not failed if ours else None,
        "{0} runs, {1} failed{2}".format(len(ours), len(failed), "".join(
            "; {0} N={1} {2}: {3}".format(r["row"], r["n"], r["phase"], r.get("error")) for r in failed)))
    for n in role_sizes:
        share = ROLE_TARGETS.get(n)
        target = "role end to end re-run (N={0}) at most {1}x the amazon.aws-only playbook".format(
            n, share if share is not None else "?")
        entry = _find(rows, "role", n, "rerun")
        if pending:
            add(target, None, pending)
        elif share is None:
            continue
        elif entry is None or entry["ours_wall_seconds"] is None or entry["amazon_wall_seconds"] is None:
            add(target, None, "no successful run of both")
        else:
            add(target, entry["wall_ratio"] <= share, "{0:.2f} s vs {1:.2f} s: ratio {2:.3f}, target <= {3}".format(
                entry["ours_wall_seconds"], entry["amazon_wall_seconds"], entry["wall_ratio"], share))
    role_runs = [r for r in records if r["row"] == "role" and r["contender"] == OURS and not r.get("skipped")]
    if role_runs:
        counts = collections.Counter((r["n"], r["phase"], tuple(r["module_runs"].get(m, 0) for m in ROLE_MODULES))
                                     for r in role_runs)
        # At most one of each per converge (never one per instance); a no-op re-run needs neither.
        add("the role runs one ec2_profile_association and one ec2_metadata_options task per converge, none on a "
            "no-op re-run",
            all(c == ((0, 0) if phase == "rerun" else (1, 1)) for (_n, phase, c) in counts),
            "; ".join("N={0} {1}: {2} and {3} ({4} run{5})".format(
                n, PHASE_TITLES[phase], c[0], c[1], k, "" if k == 1 else "s")
                for (n, phase, c), k in sorted(counts.items())))
    return results


def _cell(value, fmt="{0:.2f}"):
    return "-" if value is None else fmt.format(value)


def _throttled_cell(entry, key):
    if entry[key + "_throttled"] is None:
        return "-"
    return "{0:g} ({1:.1f} %)".format(entry[key + "_throttled"], 100 * (entry[key + "_throttled_share"] or 0))


def _runs_cell(entry):
    text = "{0}/{1}".format(entry["ours_runs"], entry["amazon_runs"])
    for key, contender in (("ours", OURS), ("amazon", AMAZON)):
        if entry[key + "_failed"]:
            errors = "; ".join(e[:160] for e in entry[key + "_errors"]) or "see log"
            text += " ({0} {1} FAILED: {2})".format(entry[key + "_failed"], contender, errors)
        if entry[key + "_skipped"]:
            text += " ({0} skipped: {1})".format(contender, "; ".join(entry[key + "_skipped"]))
    return text.replace("|", "/")


def association_table(rows):
    lines = [
        "| N | phase | token limit s | wall s ours | ours / limit | API calls ours | throttled ours "
        "| wall s amazon.aws | amazon.aws / limit | API calls amazon.aws | throttled amazon.aws "
        "| wall ours / amazon.aws | runs ours/amazon.aws |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        if r["row"] != "association":
            continue
        lines.append("| {0} | {1} | {2} | {3} | {4} | {5} | {6} | {7} | {8} | {9} | {10} | {11} | {12} |".format(
            r["n"], PHASE_TITLES[r["phase"]], _cell(r["limit_seconds"], "{0:.1f}"),
            _cell(r["ours_wall_seconds"]), _cell(r["ours_limit_ratio"], "{0:.3f}x"),
            _cell(r["ours_api_calls"], "{0:g}"), _throttled_cell(r, "ours"),
            _cell(r["amazon_wall_seconds"]), _cell(r["amazon_limit_ratio"], "{0:.3f}x"),
            _cell(r["amazon_api_calls"], "{0:g}"), _throttled_cell(r, "amazon"),
            _cell(r["wall_ratio"], "{0:.3f}"), _runs_cell(r)))
    return "\n".join(lines)


def timing_table(rows):
    lines = [
        "| N | phase | read s | plan s | apply s | wait s | module total s | paced s | API calls | throttled "
        "| request rates at the end |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        timing = r["ours_timing"] if r["row"] == "association" else None
        if not timing:
            continue
        seconds = timing.get("seconds") or {}
        rates = ", ".join("{0} {1:g}/s".format(k, v) for k, v in sorted((timing.get("request_rates") or {}).items()))
        lines.append("| {0} | {1} | {2} | {3} | {4} | {5} | {6} | {7} | {8} | {9} | {10} |".format(
            r["n"], PHASE_TITLES[r["phase"]], *[_cell(seconds.get(p)) for p in ("read", "plan", "apply", "wait", "total")],
            _cell(timing.get("paced_seconds")), _cell(timing.get("api_calls"), "{0:g}"),
            _cell(timing.get("throttled"), "{0:g}"), rates or "-"))
    return "\n".join(lines)


def role_table(rows):
    lines = [
        "| N | phase | wall s ours | wall s amazon.aws | wall ratio | CPU s ours | CPU s amazon.aws "
        "| API calls ours | API calls amazon.aws "
        "| throttled ours / amazon.aws | our role's ec2_profile_association / ec2_metadata_options tasks "
        "| runs ours/amazon.aws |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for r in rows:
        if r["row"] != "role":
            continue
        lines.append("| {0} | {1} | {2} | {3} | {4} | {5} | {6} | {7} | {8} | {9} / {10} | {11} | {12} |".format(
            r["n"], PHASE_TITLES[r["phase"]], _cell(r["ours_wall_seconds"]), _cell(r["amazon_wall_seconds"]),
            _cell(r["wall_ratio"], "{0:.3f}"), _cell(r["ours_cpu_seconds"]), _cell(r["amazon_cpu_seconds"]),
            _cell(r["ours_api_calls"], "{0:g}"),
            _cell(r["amazon_api_calls"], "{0:g}"), _cell(r["ours_throttled"], "{0:g}"),
            _cell(r["amazon_throttled"], "{0:g}"),
            ", ".join("{0} / {1}".format(*c) for c in r["ours_module_runs"]) or "-", _runs_cell(r)))
    return "\n".join(lines)


def machine():
    info = run.machine()
    try:
        info["nproc"] = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        info["nproc"] = info["cpus"]
    return info


# ---- the whole bench ----------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,500,1000",
                        help="fleet sizes N of the association row, comma-separated (default 100,500,1000)")
    parser.add_argument("--with-2000", action="store_true", help="add N=2000 to --sizes (about 15 more minutes)")
    parser.add_argument("--reps", type=int, default=2,
                        help="repetitions per contender for N < {0} (default 2; N >= {0}: one)".format(LARGE))
    parser.add_argument("--role-n", default="10,100",
                        help="fleet sizes of the role row, comma-separated (default 10,100; 0 skips the row)")
    parser.add_argument("--role-reps", type=int, default=2, help="repetitions of the role row (default 2)")
    parser.add_argument("--budget", type=float, default=2400,
                        help="seconds the whole bench may take (default 2400: 40 min); amazon.aws runs at "
                             "N >= {0} that would not end in time are skipped and marked so (0: no limit)".format(LARGE))
    parser.add_argument("--out", default=os.path.join(HERE, "results"),
                        help="results folder (default bench/results): aws-table.md, aws.json, aws/logs/")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    sizes = sorted(set(int(s) for s in args.sizes.split(",") if s.strip()) | ({2000} if args.with_2000 else set()))
    role_sizes = [int(s) for s in args.role_n.split(",") if s.strip() and int(s) > 0]
    os.makedirs(args.out, exist_ok=True)
    started = time.monotonic()
    started_at = datetime.datetime.now(datetime.timezone.utc)
    info = machine()
    pending = run.role_pending() if role_sizes else None
    print("make bench-aws: keyless.aws vs amazon.aws under EC2's rate limits (the sandbox's AWS-like mode; "
          "moto {0}, {1} CPUs, load {2})".format(info["moto"], info["nproc"], info["load_average_at_start"]),
          flush=True)
    with run.Sandbox() as sandbox:
        bench = AwsBench(sandbox, os.path.join(args.out, "aws"))
        for n in sizes:
            if n < LARGE:
                for rep in range(max(args.reps, 1)):
                    for contender in (CONTENDERS if rep % 2 == 0 else tuple(reversed(CONTENDERS))):
                        bench.association_trial(contender, n, rep)
        if role_sizes and not pending:
            for role_n in role_sizes:
                for rep in range(max(args.role_reps, 1)):
                    for contender in (CONTENDERS if rep % 2 == 0 else tuple(reversed(CONTENDERS))):
                        bench.role_trial(contender, role_n, rep)
        elif pending:
            print("  role row {0}".format(pending), flush=True)
        large = [n for n in sizes if n >= LARGE]
        for index, n in enumerate(large):
            bench.association_trial(OURS, n, 0)
            guard = amazon_guard(bench.records, n, large[index + 1:], args, started)
            bench.association_trial(AMAZON, n, 0, allow=guard)
        records = bench.records
    return report(args, argv, info, sizes, role_sizes, pending, records, started, started_at)


def report(args, argv, info, sizes, role_sizes, pending, records, started, started_at):
    rows = summarize(records)
    checked = targets(rows, records, sizes, role_sizes, pending)
    total = time.monotonic() - started
    info["load_average_at_end"] = run._load()
    loads = [r["load_average"] for r in records if r.get("load_average") is not None]
    measured_buckets = next((r["limits_buckets"] for r in records if r.get("limits_buckets")), DEFAULT_BUCKETS)
    command = "bench/aws.py " + " ".join(argv if argv is not None else sys.argv[1:])
    parts = [
        "AWS-like sandbox (tests/sandbox/limits.py on for every measured run: EC2 token buckets per account and "
        "region, {0} s a call to EC2, {1} s to IAM); medians; wall = the whole ansible-playbook command; API calls "
        "and throttled answers (503 RequestLimitExceeded / 400 Throttling) from the sandbox's request log. "
        "N >= {2}: one run per cell. Token limit: {3}.".format(
            _latency(records, "ec2"), _latency(records, "iam"), LARGE, limit_text(measured_buckets)),
        "",
        "Fleet, one task (keyless.aws) vs tasks of at most {0} ids (amazon.aws):".format(CHUNK),
        "",
        association_table(rows),
    ]
    if any(r["row"] == "association" and r["ours_timing"] for r in rows):
        parts += ["", "Where keyless.aws.ec2_profile_association's time went (its `timing` result):", "",
                  timing_table(rows)]
    if any(r["row"] == "role" for r in rows):
        parts += ["", "Role end to end (playbooks/provision.yml vs bench/playbooks/role_amazon.yml):", "",
                  role_table(rows)]
    elif pending:
        parts += ["", "Role end to end: " + pending]
    parts += [
        "",
        "Targets (reported, never asserted):",
        run.target_lines(checked),
        "",
        run.machine_line(total, info, loads),
    ]
    text = "\n".join(parts)
    print("\n" + text, flush=True)
    with open(os.path.join(args.out, "aws-table.md"), "w") as handle:
        handle.write(text + "\n")
    with open(os.path.join(args.out, "aws.json"), "w") as handle:
        json.dump({"command": command.strip(), "settings": dict(vars(args), sizes=sizes, role_n=role_sizes),
                   "machine": info, "started": started_at.isoformat(timespec="seconds"),
                   "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                   "total_seconds": round(total, 1),
                   "role_row": pending or ("measured" if role_sizes else "skipped"),
                   "rows": rows, "targets": checked, "runs": records}, handle, indent=1)
    print("Raw figures: {0}; logs: {1}".format(os.path.relpath(os.path.join(args.out, "aws.json"), ROOT),
                                               os.path.relpath(os.path.join(args.out, "aws", "logs"), ROOT)))
    return 0 if all(r["ok"] for r in records if r["contender"] == OURS) else 1


def _latency(records, service):
    """The latency of ``service``'s calls the measured runs had (the limits' live configuration)."""
    latency = next((r["limits_latency"] for r in records if r.get("limits_latency")), DEFAULT_LATENCY)
    return latency.get(service, latency.get("*", 0))


if __name__ == "__main__":
    sys.exit(main())
