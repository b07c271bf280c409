"""make bench, smoke: the whole bench at N=10, one repetition, throttling run included; and
make bench-aws (bench/aws.py, the AWS-like rows) at N=10, one repetition.

Runs bench/run.py and bench/aws.py as `make bench` and `make bench-aws` do (their own sandbox,
ansible-playbook subprocesses) and checks that they produce the tables and the raw figures, that
every run did its job, and that the API call counts are what the two contenders must make. Never a
timing: the benches report the targets, tests do not assert them.
"""

import json
import os
import subprocess
import sys

import pytest

from runner import ROOT

pytestmark = pytest.mark.slow

N = 10


def by(runs, row, contender, phase):
    found = [r for r in runs if r["row"] == row and r["contender"] == contender and r["phase"] == phase]
    assert len(found) == 1, (row, contender, phase, found)
    return found[0]


def test_bench_at_ten_instances_gives_the_table_and_sane_counts(tmp_path):
    out = tmp_path / "results"
    command = [sys.executable, os.path.join(ROOT, "bench", "run.py"), "--sizes", str(N), "--reps", "1",
               "--role-reps", "1", "--throttle-n", str(N), "--out", str(out)]
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

    # The role row: measured (both contenders did the whole job) or marked pending, never faked.
    targets = dict((t["target"], t) for t in data["targets"])
    if data["role_row"] == "measured":
        for contender in ("keyless.aws", "amazon.aws"):
            assert by(runs, "role", contender, "first")["ok"] and by(runs, "role", contender, "rerun")["ok"]
        assert "| role end to end | {0} | no-op re-run |".format(N) in output
    else:
        assert data["role_row"].startswith("pending") and "PENDING" in output
    assert targets["API calls, N={0} first run: at most N + 6".format(N)]["status"] == "met"
    assert targets["API calls, N={0} no-op re-run: at most 6".format(N)]["status"] == "met"
    assert targets["no failure under EC2 throttling (N={0})".format(N)]["status"] == "met"

    try:
        import matplotlib  # noqa: F401  (bench/requirements.txt; make bench installs it)
    except ImportError:
        assert "no plot" in output
    else:
        assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_aws_bench_at_ten_instances_runs_under_the_limits_and_gives_the_tables(tmp_path):
    out = tmp_path / "results"
    command = [sys.executable, os.path.join(ROOT, "bench", "aws.py"), "--sizes", str(N), "--reps", "1",
               "--role-n", str(N), "--role-reps", "1", "--out", str(out)]
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
    # tokens); the module's own timing agrees with the request log; the limit of N=10 is 0 s.
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

    # amazon.aws in tasks of at most 196 ids: one ec2_instance task at N=10, the same job done.
    amazon_first = by(runs, "association", "amazon.aws", "first")
    assert amazon_first["module_runs"] == {"ec2_instance": 1}
    assert amazon_first["by_action"]["ec2:AssociateIamInstanceProfile"] == N
    assert by(runs, "association", "amazon.aws", "swap")["by_action"]["ec2:ReplaceIamInstanceProfileAssociation"] == N

    # The role row: measured, and our role ran one task of each fleet module per converge.
    targets = dict((t["target"], t) for t in data["targets"])
    if data["role_row"] == "measured":
        for phase in ("first", "rerun"):
            ours = by(runs, "role", "keyless.aws", phase)
            assert ours["module_runs"]["ec2_profile_association"] == 1
            assert ours["module_runs"]["ec2_metadata_options"] == 1
            assert by(runs, "role", "amazon.aws", phase)["ok"]
        assert targets["the role runs one ec2_profile_association and one ec2_metadata_options task per "
                       "converge"]["status"] == "met"
    else:
        assert data["role_row"].startswith("pending")
    assert targets["keyless.aws: zero failures"]["status"] == "met"
    assert targets["N={0}: throttled answers at most 5 % of keyless.aws's calls".format(N)]["status"] == "met"


def test_aws_bench_token_limit_comes_from_the_bucket_table():
    saved = list(sys.path)
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    try:
        import aws  # bench/aws.py (it puts bench/ and tests/ on the path: put back as it was after)
    finally:
        sys.path[:] = saved
    from sandbox.limits import DEFAULT_BUCKETS

    assert aws.token_limit(DEFAULT_BUCKETS, 1000, "first") == (180.0, "associations", 100, 5)
    assert aws.token_limit(DEFAULT_BUCKETS, 1000, "swap") == (190.0, "mutating", 50, 5)
    assert aws.token_limit(DEFAULT_BUCKETS, 40, "swap")[0] == 0
    assert aws.token_limit(DEFAULT_BUCKETS, 1000, "rerun") is None
    changed = {"ec2": dict(DEFAULT_BUCKETS["ec2"], associations={"capacity": 10, "refill": 2})}
    assert aws.token_limit(changed, 30, "first") == (10.0, "associations", 10, 2)
