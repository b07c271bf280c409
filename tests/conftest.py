"""Shared by unit and integration tests: imports, and the sandbox fixture.

``ansible_collections.keyless.aws`` is importable through .build/collections (laid out by
``make venv``: keyless/aws is this checkout, amazon/aws the venv's copy).
"""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# scripts/test-matrix.sh points KEYLESS_COLLECTIONS at the tree of a matrix venv (its amazon.aws).
COLLECTIONS = os.environ.get("KEYLESS_COLLECTIONS") or os.path.join(ROOT, ".build", "collections")
# tests/integration holds the support modules (runner, reliability_support) the docs and
# packaging tests use too; tests/docs the page reader (quoted).
for path in (COLLECTIONS, os.path.join(ROOT, "tests"), os.path.join(ROOT, "tests", "integration"),
             os.path.join(ROOT, "tests", "docs")):
    if path not in sys.path:
        sys.path.insert(0, path)

if not os.path.isdir(os.path.join(COLLECTIONS, "ansible_collections", "keyless", "aws")):
    raise RuntimeError("run `make venv` first: .build/collections is missing")

from sandbox import Sandbox  # noqa: E402


# The longest test files first, then the other integration and packaging tests, the quick unit
# and functional ones last. Under pytest-xdist a worker that draws a two-minute test near the end
# keeps the whole run waiting while the other workers idle; started first, those tests overlap
# with everything else, and the short tests even out the end. (The order within a file is kept.)
LONG_FIRST = ("test_demo.py", "test_bench_smoke.py", "test_molecule.py", "test_many_accounts_playbooks.py",
              "test_docs_examples.py", "test_races.py", "test_playbooks.py", "test_harden_playbook.py")


def pytest_collection_modifyitems(config, items):
    def rank(item):
        path = str(item.fspath)
        name = os.path.basename(path)
        if name in LONG_FIRST:
            return (0, LONG_FIRST.index(name))
        if os.sep + "integration" + os.sep in path or os.sep + "packaging" + os.sep in path:
            return (1, 0)
        return (2, 0)

    items.sort(key=rank)  # stable: each file's tests stay in their order


@pytest.fixture(scope="session")
def sandbox_server():
    """One sandbox per test process (each xdist worker has its own, on its own port)."""
    with Sandbox() as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server):
    """A sandbox with no AWS resources and an empty request log."""
    sandbox_server.reset()
    yield sandbox_server


@pytest.fixture
def instant_transitions(sandbox):
    """Instances settle at once (tests/sandbox/moto_fixes.py), for tests about something other
    than EC2's pending and stopping states."""
    with sandbox.transitions.instant():
        yield


@pytest.fixture
def imds(sandbox):
    """``imds(instance_id, **options)`` starts the instance's IMDS emulator; all stop at the end."""
    yield sandbox.imds.start
    sandbox.imds.stop_all()
