"""`make demo-guard`'s script (scripts/demo_guard.py) against the test's sandbox: every drift it makes
is put right, and the exempt instance left alone."""

import os
import re
import sys

import pytest

from guard_support import RuntimeMissing
from guard_support import build_runtime
from runner import OUTPUT, ROOT

sys.path.insert(0, os.path.join(ROOT, "scripts"))

import demo_guard  # noqa: E402  (scripts/demo_guard.py)


def test_demo_guard_puts_each_drift_right(sandbox, instant_transitions, capsys):  # pylint: disable=unused-argument
    try:
        build_runtime()
    except RuntimeMissing as missing:
        pytest.skip("the rulebook runtime cannot be built on this machine: {0}".format(missing))
    assert demo_guard.main(sandbox) == 0
    output = capsys.readouterr().out
    os.makedirs(OUTPUT, exist_ok=True)
    with open(os.path.join(OUTPUT, "demo-guard.log"), "w", encoding="utf-8") as handle:
        handle.write(output)
    assert re.search(r"an instance launched with IMDSv1 allowed and no profile \(i-[0-9a-f]+\): IMDSv2 required "
                     r"again and profile web-app attached \d+\.\d s later", output), output
    assert re.search(r"HttpTokens set back to optional on i-[0-9a-f]+: required again \d+\.\d s later", output), output
    assert re.search(r"keyless:guard=exempt \(i-[0-9a-f]+\): left alone, HttpTokens optional, profiles none", output)
    assert "CloudTrail: Recorded by a logging trail" in output
    assert "== demo-guard done: 3 event(s) handled" in output, output
