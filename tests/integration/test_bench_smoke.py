"""make bench, smoke: bench/run.py at N=5, one repetition, throttling run included; make bench-aws:
bench/aws.py (the AWS-like rows) at N=5 with its role row at N=3, one repetition, and bench/forks.py
(audit.yml over an organisation, forks 1 and 10, and the amazon.aws loop) at 2 accounts x 1 region x
1 instance.

Runs the scripts as `make bench` and `make bench-aws` do (their own sandbox, ansible-playbook
subprocesses) and checks that they produce the tables and the raw figures, that every run did its
job, and that the API call counts are what the contenders must make. Never a timing: the benches
report the targets, tests do not assert them.

Kept small (each ansible-playbook run is most of a smoke's time): N=5 instead of a larger fleet
(the counts scale with N; at N=5 amazon.aws's per-instance calls, 2N + 2, already outnumber ours,
N + 5, and the throttling run meets EC2's refusal at every 4th call), and the role row (the
most expensive: the role's module tasks, twice per contender) runs once, in bench/aws.py's smoke,
where its records also go through bench/run.py's table and targets; bench/run.py's smoke skips it
(``--role-n 0``, the option a user has too).
"""

import json
import os
import subprocess
import sys

import pytest

from runner import ROOT

pytestmark = pytest.mark.slow

N = 5
ROLE_N = 3


def by(runs, row, contender, phase):
    found = [r for r in runs if r["row"] == row and r["contender"] == contender and r["phase"] == phase]
    assert len(found) == 1, (row, contender, phase, found)
    return found[0]


def test_bench_at_five_instances_gives_the_table_and_sane_counts(tmp_path):
    out = tmp_path / "results"
    command = [sys.executable, os.path.join(ROOT, "bench", "run.py"), "--sizes", str(N), "--reps", "1",
               "--role-n", "0", "--throttle-n", str(N), "--out", str(out)]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    completed = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=900, check=False)
    output = completed.stdout.decode("utf-8", "replace")
    assert completed.returncode == 0, output[-6000:]

    # The table, on stdout and in table.md, with a row per phase and the targets.
    for phase in ("first run", "no-op re-run", "swap to 2nd profile"):
        assert "| fleet, one task | {0} | {1} |".format(N, phase) in output
        assert "| throttled EC2 | {0} | {1} |".format(N, phase) in output
    assert "Targets:" in output and "Total bench time" in output
    assert (out / "table.md").read_text().strip() in output

    data = json.loads((out / "bench.json").read_text())
    runs = data["runs"]
    assert runs and all(r["ok"] and r["returncode"] == 0 for r in runs), [r["problems"] for r in runs]
    assert data["machine"]["cpus"] and data["total_seconds"] > 0

    # Ours: N mutating calls plus a constant few reads; the re-run only those reads.
    first = by(runs, "association", "keyless.aws", "first")
    assert first["by_action"]["ec2:AssociateIamInstanceProfile"] == N == first["mutating_calls"]
    assert N < first["api_calls"] <= N + 6
    rerun = by(runs, "association", "keyless.aws", "rerun")
    assert rerun["mutating_calls"] == 0 and 0 < rerun["api_calls"] <= 6 and rerun["changed_tasks"] == 0
    swap = by(runs, "association", "keyless.aws", "swap")
    assert swap["by_action"]["ec2:ReplaceIamInstanceProfileAssociation"] == N == swap["mutating_calls"]
    assert N < swap["api_calls"] <= N + 6

    # amazon.aws did the same job (the bench checked the fleet after each run), one instance at a time.
    assert by(runs, "association", "amazon.aws", "first")["by_action"]["ec2:AssociateIamInstanceProfile"] == N
    assert by(runs, "association", "amazon.aws", "rerun")["mutating_calls"] == 0
    assert by(runs, "association", "amazon.aws", "swap")["by_action"][
        "ec2:ReplaceIamInstanceProfileAssociation"] == N
    assert by(runs, "association", "amazon.aws", "first")["api_calls"] > first["api_calls"]

    # Throttled: EC2 refused requests (503 RequestLimitExceeded, in the log) and nothing failed.
    for phase in ("first", "swap"):
        throttled = by(runs, "throttled", "keyless.aws", phase)
        assert throttled["throttle_injected"] > 0
        assert throttled["statuses"].get("503") == throttled["throttled_calls"] == throttled["throttle_injected"]
        assert throttled["mutating_calls"] >= N

    # The role row: skipped here (--role-n 0; the aws smoke runs it through this script's table),
    # and said so, never faked.
    targets = dict((t["target"], t) for t in data["targets"])
    assert data["role_row"] == "skipped" and not [r for r in runs if r["row"] == "role"]
    assert "| role end to end |" not in output
    assert targets["role end to end re-run at most 1/2 of the amazon.aws-only playbook"]["status"] == "not measured"
    assert targets["API calls, N={0} first run: at most N + 6".format(N)]["status"] == "met"
    assert targets["API calls, N={0} no-op re-run: at most 6".format(N)]["status"] == "met"
    assert targets["no failure under EC2 throttling (N={0})".format(N)]["status"] == "met"

    try:
        import matplotlib  # noqa: F401  (bench/requirements.txt; make bench installs it)
    except ImportError:
        assert "no plot" in output
    else:
        assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_forks_bench_at_two_hosts_audits_every_instance_with_forks_1_and_10_and_the_amazon_loop(tmp_path):
    out = tmp_path / "results"
    command = [sys.executable, os.path.join(ROOT, "bench", "forks.py"), "--accounts", "2", "--regions", "1",
               "--instances", "1", "--reps", "1", "--out", str(out)]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    completed = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=900, check=False)
    output = completed.stdout.decode("utf-8", "replace")
    assert completed.returncode == 0, output[-6000:]

    # The table, on stdout and in forks-table.md: one row per run, the ratios, the note on the job.
    header = ("| run | hosts | forks | wall s | CPU s | CPU s / target | API calls | calls / target | throttled "
              "| instances seen | wall / amazon.aws loop | runs |")
    assert header in output
    for title, hosts, forks in (("keyless.aws audit.yml, forks 1", 2, 1), ("keyless.aws audit.yml, forks 10", 2, 10),
                                ("amazon.aws loop (by hand), one host", 1, 1)):
        assert "| {0} | {1} | {2} | ".format(title, hosts, forks) in output
    assert "- speed-up, forks 10 against forks 1: " in output and "- not the same job: " in output
    assert "- forks 10 made the same API calls as forks 1: yes" in output
    assert (out / "forks-table.md").read_text().strip() in output

    data = json.loads((out / "forks.json").read_text())
    assert data["hosts"] == 2 and data["instances"] == 2 and data["machine"]["nproc"]
    runs = dict((r["variant"], r) for r in data["runs"])
    assert sorted(runs) == ["forks1", "forks10", "loop"] and len(data["runs"]) == 3
    assert all(r["ok"] and r["returncode"] == 0 and r["throttled"] == 0 for r in runs.values()), runs
    for r in runs.values():  # the AWS-like mode was on: its latency, and it admitted the run's calls
        assert r["limits_latency"]["ec2"] == 0.02 and sum(r["limits_stats"]["admitted"].values()) > 0, r
    assert (runs["forks1"]["forks"], runs["forks10"]["forks"]) == (1, 10)

    # audit.yml saw both hosts, nothing failed, and every instance (one per host, without a profile,
    # IMDSv1 allowed, as seeded); each host assumed its own role once and read its own region.
    for key in ("forks1", "forks10"):
        seen = runs[key]["seen"]
        assert (seen["targets"], seen["failed_targets"], seen["instances"]) == (2, 0, 2), seen
        assert seen["findings"]["instance_without_profile"] == 2 and seen["findings"]["instance_allows_imdsv1"] == 2
        assert runs[key]["by_action"]["sts:AssumeRole"] == 2
        assert runs[key]["hosts"] == 2
    # forks 10 did the same job with the same calls as forks 1 (only the order and overlap differ).
    assert runs["forks10"]["by_action"] == runs["forks1"]["by_action"]
    assert runs["forks10"]["api_calls"] == runs["forks1"]["api_calls"] > 2 * 5
    assert data["ratios"]["same_calls_forks10_forks1"] is True
    # The amazon.aws loop: one AssumeRole and one DescribeInstances per target, every instance listed.
    loop = runs["loop"]
    assert (loop["seen"]["targets"], loop["seen"]["instances"]) == (2, 2) and loop["hosts"] == 1
    assert loop["by_action"] == {"ec2:DescribeInstances": 2, "sts:AssumeRole": 2}
    assert loop["seen"]["findings"] == {"instance_allows_imdsv1": 2, "instance_without_profile": 2}

    rows = dict((r["variant"], r) for r in data["rows"])
    assert [r["variant"] for r in data["rows"]] == ["forks1", "forks10", "loop"]
    assert rows["loop"]["wall_vs_loop"] == 1.0 and rows["forks10"]["instances"] == 2
    assert data["ratios"]["speedup_forks10_vs_forks1"] == round(
        rows["forks1"]["wall_seconds"] / rows["forks10"]["wall_seconds"], 3)


def test_aws_bench_at_five_instances_runs_under_the_limits_and_gives_the_tables(tmp_path):
    out = tmp_path / "results"
    command = [sys.executable, os.path.join(ROOT, "bench", "aws.py"), "--sizes", str(N), "--reps", "1",
               "--role-n", str(ROLE_N), "--role-reps", "1", "--out", str(out)]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    completed = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=900, check=False)
    output = completed.stdout.decode("utf-8", "replace")
    assert completed.returncode == 0, output[-6000:]

    # The tables, on stdout and in aws-table.md: a row per phase, the token limit, the targets.
    for phase in ("first run", "no-op re-run", "swap to 2nd profile"):
        assert "| {0} | {1} |".format(N, phase) in output
    assert "max(0, N - 100) / 5 s" in output and "max(0, N - 50) / 5 s" in output
    assert "Targets (reported, never asserted):" in output and "Total bench time" in output
    assert (out / "aws-table.md").read_text().strip() in output

    data = json.loads((out / "aws.json").read_text())
    runs = data["runs"]
    assert runs and all(r["ok"] and r["returncode"] == 0 for r in runs), [r["problems"] for r in runs]
    assert data["machine"]["nproc"] and data["total_seconds"] > 0
    # Every measured run had the AWS-like mode on (the limits counted its calls) with EC2's table.
    for r in runs:
        assert r["limits_on"] and sum(r["limits_stats"]["admitted"].values()) > 0, r
        assert r["limits_buckets"]["ec2"]["associations"] == {"capacity": 100, "refill": 5}

    # Ours: N attach calls from the associations bucket, none refused (N is far below its 100
    # tokens); the module's own timing agrees with the request log; the limit of N=5 is 0 s.
    first = by(runs, "association", "keyless.aws", "first")
    assert first["by_action"]["ec2:AssociateIamInstanceProfile"] == N
    assert first["limits_stats"]["admitted"]["ec2/associations"] == N and first["throttled"] == 0
    assert first["limit_seconds"] == 0 and first["limit_bucket"] == "associations (100/5)"
    assert first["module_timing"]["api_calls"] == first["api_calls"] and first["module_timing"]["throttled"] == 0
    assert set(first["module_timing"]["seconds"]) >= {"read", "plan", "apply", "wait", "total"}
    swap = by(runs, "association", "keyless.aws", "swap")
    assert swap["limits_stats"]["admitted"]["ec2/mutating"] == N and swap["limit_bucket"] == "mutating (50/5)"
    rerun = by(runs, "association", "keyless.aws", "rerun")
    assert rerun["mutating_calls"] == 0 and rerun["limit_seconds"] is None

    # amazon.aws in tasks of at most 196 ids: one ec2_instance task at N=5, the same job done.
    amazon_first = by(runs, "association", "amazon.aws", "first")
    assert amazon_first["module_runs"] == {"ec2_instance": 1}
    assert amazon_first["by_action"]["ec2:AssociateIamInstanceProfile"] == N
    assert by(runs, "association", "amazon.aws", "swap")["by_action"]["ec2:ReplaceIamInstanceProfileAssociation"] == N

    # The role row: measured (both contenders did the whole job: the bench checked role, profile,
    # template and fleet after each run), and our role ran one task of each fleet module per converge.
    targets = dict((t["target"], t) for t in data["targets"])
    if data["role_row"] == "measured":
        for phase, each in (("first", 1), ("rerun", 0)):  # a no-op re-run needs neither
            ours = by(runs, "role", "keyless.aws", phase)
            assert ours["ok"] and ours["returncode"] == 0
            assert ours["module_runs"].get("ec2_profile_association", 0) == each
            assert ours["module_runs"].get("ec2_metadata_options", 0) == each
            assert by(runs, "role", "amazon.aws", phase)["ok"]
        assert "| {0} | no-op re-run |".format(ROLE_N) in output
        assert targets["the role runs one ec2_profile_association and one ec2_metadata_options task per "
                       "converge, none on a no-op re-run"]["status"] == "met"
        # The same records through bench/run.py's role table and target (its smoke skips the row).
        run = bench_module("run")
        rows = run.summarize([r for r in runs if r["row"] == "role"])
        table = run.table(rows, None, (ROLE_N,))
        for phase in ("first run", "no-op re-run"):
            assert "| role end to end | {0} | {1} |".format(ROLE_N, phase) in table
        assert "| 1/1 |" in table and "FAILED" not in table
        checked = dict((t["target"], t) for t in run.targets(rows, [], None))
        role_target = checked["role end to end re-run (N={0}) at most 1/2 of the amazon.aws-only playbook".format(
            ROLE_N)]
        assert role_target["status"] in ("met", "missed") and "target <= 0.5" in role_target["figures"]
    else:
        assert data["role_row"].startswith("pending")
    assert targets["keyless.aws: zero failures"]["status"] == "met"
    assert targets["N={0}: throttled answers at most 5 % of keyless.aws's calls".format(N)]["status"] == "met"


def bench_module(name):
    """bench/<name>.py, imported (it puts bench/ and tests/ on the path: put back as it was after)."""
    import importlib

    saved = list(sys.path)
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path[:] = saved


def test_aws_bench_token_limit_comes_from_the_bucket_table():
    aws = bench_module("aws")
    from sandbox.limits import DEFAULT_BUCKETS

    assert aws.token_limit(DEFAULT_BUCKETS, 1000, "first") == (180.0, "associations", 100, 5)
    assert aws.token_limit(DEFAULT_BUCKETS, 1000, "swap") == (190.0, "mutating", 50, 5)
    assert aws.token_limit(DEFAULT_BUCKETS, 40, "swap")[0] == 0
    assert aws.token_limit(DEFAULT_BUCKETS, 1000, "rerun") is None
    changed = {"ec2": dict(DEFAULT_BUCKETS["ec2"], associations={"capacity": 10, "refill": 2})}
    assert aws.token_limit(changed, 30, "first") == (10.0, "associations", 10, 2)


def test_guard_bench_times_one_drift_per_contender(tmp_path):
    """bench/guard.py at one trial each: both contenders put the drift right, the table has its rows."""
    out = tmp_path / "results"
    command = [sys.executable, os.path.join(ROOT, "bench", "guard.py"), "--trials", "1", "--out", str(out)]
    completed = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=900,
                               check=False)
    output = completed.stdout.decode("utf-8", "replace")
    if completed.returncode == 3 or "cannot be built" in output:
        pytest.skip("the rulebook runtime cannot be built on this machine")
    assert completed.returncode == 0, output[-6000:]
    for row in ("| call to state put right, median s | ", "| worst s | ",
                "| API calls of the remediation (EC2, IAM, STS), median | ", "| trials put right | 1/1 | 1/1 | |"):
        assert row in output, output
    data = json.loads((out / "guard.json").read_text())
    assert [r["contender"] for r in data["records"]] == ["keyless.aws", "amazon.aws"]
    ours = data["records"][0]
    # The remediation read, then changed: the association and the metadata options, nothing else.
    assert ours["calls_by_action"].get("ec2:AssociateIamInstanceProfile") == 1, ours
    assert ours["calls_by_action"].get("ec2:ModifyInstanceMetadataOptions") == 1, ours
    assert (out / "guard-table.md").read_text().strip() in output
