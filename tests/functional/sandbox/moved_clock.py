"""A monotonic clock that moves only when a test says so: the sandbox's timed behaviours
(transitions, the propagation window) read it, so "still in flight" never depends on the speed
of the machine."""

import time


class MovedClock:
    def __init__(self):
        self.now = time.monotonic()

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds
