"""Fixtures for integration tests: playbooks against the sandbox."""

import pytest

from runner import run_playbook


@pytest.fixture
def playbook(sandbox):
    """``playbook(path, *args)`` runs a playbook against a freshly reset sandbox."""

    def runner(path, *args, **kwargs):
        return run_playbook(sandbox, path, *args, **kwargs)

    return runner
