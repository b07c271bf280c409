"""make bench, smoke: the whole bench at N=10, one repetition, throttling run included.

Runs bench/run.py as `make bench` does (its own sandbox, ansible-playbook subprocesses) and
checks that it produces the table and the raw figures, that every run did its job, and that the
API call counts are what the two contenders must make. Never a timing: the bench reports the
targets, tests do not assert them.
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
