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
