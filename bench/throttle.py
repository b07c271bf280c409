"""EC2 throttling for the bench's throttling run: an interceptor of the sandbox.

EC2 refuses requests beyond an account's request rate with HTTP 503 and the error code
``RequestLimitExceeded`` ("Request limit exceeded."), whatever the action. ``EC2Throttle``
answers that way to every ``every``-th EC2 request it sees (retries included), so a run of
a fixed number of calls meets a fixed share of refusals: counted, never timed, so the figures
do not depend on the machine's speed. IAM and the sandbox's own control paths are left alone.

Kept in bench/ on purpose: the sandbox's general fault-injection proxy lives in
tests/sandbox/; this is the one fault the bench needs.
"""

import contextlib
import threading

from sandbox.faults import ec2_error


class EC2Throttle:
    """Every ``every``-th EC2 request fails with 503 RequestLimitExceeded; none while ``paused``
    (the bench's own reads of the fleet after a run are no part of the run: neither refused nor
    counted)."""

    def __init__(self, every=4):
        if every < 2:
            raise ValueError("every must be 2 or more, or no request would ever get through")
        self.every = int(every)
        self.seen = 0
        self.injected = 0
        self.paused = False
        self._lock = threading.Lock()

    def __call__(self, info):
        if info.get("service") != "ec2" or self.paused:
            return None
        with self._lock:
            self.seen += 1
            if self.seen % self.every:
                return None
            self.injected += 1
        return ec2_error(503, "RequestLimitExceeded", "Request limit exceeded.")


@contextlib.contextmanager
def throttled(sandbox, every=4):
    """EC2 throttled for the duration of the block; yields the EC2Throttle (its counts)."""
    throttle = EC2Throttle(every)
    sandbox.app.interceptors.insert(0, throttle)
    try:
        yield throttle
    finally:
        sandbox.app.interceptors.remove(throttle)
