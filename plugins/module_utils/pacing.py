# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Client-side pacing: our calls spend an account's API budget at the rate AWS refills it, so a
run of a thousand changes is refused a handful of times, not hundreds.

EC2 throttles each account and region with token buckets ("Request throttling for the Amazon
EC2 API", https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html): a call takes
a token from its action's bucket, buckets refill at a fixed rate up to their capacity, and a call
that finds its bucket empty is refused with 503 ``RequestLimitExceeded``. ``EC2_BUCKETS`` is
that page's table. The buckets are the account's, shared with everything else in it (Auto
Scaling, CI, other automation), so a refused call is budget wasted for everyone.

``Pacer`` keeps one client-side ``TokenBucket`` per AWS bucket, shared by every thread of the
module process. A bucket starts at the documented capacity and rate. On a throttled answer it
empties (AWS's bucket is empty: somebody else spent it) and halves its rate (once per second at
most, however many calls in flight were refused together); while answers are not throttled the
rate climbs back towards the ceiling by 4 % of it per second (additive increase, multiplicative
decrease: the pacer settles around whatever share of the budget is left to it, and the tokens it
leaves unspent in a slow spell are AWS's bucket's to give back later). Each wait is a few
milliseconds longer than the arithmetic says, so that rounding never puts a call ahead of AWS's
refill. A user-set
``max_rate`` becomes every mutating bucket's ceiling, its burst scaled in proportion: lower than
EC2's documented rate, to leave budget for other automation in the account; higher, for an account
whose limits AWS raised on request (the throttling page's "Request a limit increase"; that raised
limits keep the documented ratio of burst to refill is our reading). Either way a throttled answer
still halves the pace.

IAM publishes no per-action table; ``IAM_BUCKETS`` is our reading (a modest rate our few IAM calls
never reach), adapted the same way when IAM answers ``Throttling``. Every other service is not
paced (its throttles are still retried).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading
import time

# bucket: (capacity, refill per second), from the EC2 developer guide's table.
EC2_BUCKETS = {
    "associations": (100, 5.0),
    "metadata_options": (100, 5.0),
    "launch_template_versions": (100, 5.0),
    "metadata_defaults": (2, 2.0),
    "run_instances": (5, 2.0),
    "mutating": (50, 5.0),
    "non_mutating": (100, 20.0),
}
EC2_ACTION_BUCKETS = {
    "AssociateIamInstanceProfile": "associations",
    "DisassociateIamInstanceProfile": "associations",
    "ModifyInstanceMetadataOptions": "metadata_options",
    "CreateLaunchTemplateVersion": "launch_template_versions",
    "ModifyLaunchTemplate": "launch_template_versions",
    "ModifyInstanceMetadataDefaults": "metadata_defaults",
    "RunInstances": "run_instances",
}
# Not published by IAM: our reading, far above what one run of ours asks for.
IAM_BUCKETS = {"mutating": (20, 5.0), "non_mutating": (50, 20.0)}
TABLES = {"ec2": (EC2_BUCKETS, EC2_ACTION_BUCKETS), "iam": (IAM_BUCKETS, {})}

NON_MUTATING_PREFIXES = ("Describe", "Get", "List")
DECREASE = 0.5  # rate kept on a throttled answer
DECREASE_EVERY = 1.0  # seconds: throttles closer together than this are one event
INCREASE_PER_SECOND = 0.04  # share of the ceiling won back per second without a throttle
FLOOR_SHARE = 0.1  # the rate never falls below this share of the ceiling
MARGIN = 0.005  # seconds added to every wait


def bucket_of(action, action_buckets=None):
    """The bucket an action draws from: named in the table, else mutating or non-mutating."""
    named = (action_buckets if action_buckets is not None else EC2_ACTION_BUCKETS).get(action)
    if named:
        return named
    return "non_mutating" if action.startswith(NON_MUTATING_PREFIXES) else "mutating"


class TokenBucket:
    """A token bucket that threads share: ``take()`` blocks until a token is theirs.

    Each caller reserves its token at once (the count may go below zero) and sleeps outside the
    lock until the refill covers it, so callers are served in order at ``rate`` per second.
    """

    def __init__(self, capacity, rate, clock=time.monotonic, sleep=time.sleep):
        if capacity < 1 or rate <= 0:
            raise ValueError("a token bucket needs a capacity of 1 or more and a positive rate")
        self.capacity = float(capacity)
        self.ceiling = float(rate)
        self.rate = float(rate)
        self.floor = self.ceiling * FLOOR_SHARE
        self.tokens = float(capacity)
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._rate_updated = self._updated
        self._last_decrease = None
        self._lock = threading.Lock()

    def _refill(self):
        now = self._clock()
        self.tokens = min(self.capacity, self.tokens + (now - self._updated) * self.rate)
        self._updated = now
        return now

    def take(self):
        """Wait for a token; returns the seconds waited."""
        with self._lock:
            self._refill()
            self.tokens -= 1.0
            wait = -self.tokens / self.rate + MARGIN if self.tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait

    def throttled(self):
        """AWS refused a call as throttled: its bucket is empty, and the budget smaller than we thought."""
        with self._lock:
            now = self._refill()
            self.tokens = min(self.tokens, 0.0)
            if self._last_decrease is None or now - self._last_decrease >= DECREASE_EVERY:
                self.rate = max(self.floor, self.rate * DECREASE)
                self._last_decrease = now
            self._rate_updated = now

    def answered(self):
        """AWS took a call: the rate climbs back towards the ceiling with the time since the last change."""
        with self._lock:
            now = self._refill()
            if self.rate < self.ceiling:
                self.rate = min(self.ceiling, self.rate + self.ceiling * INCREASE_PER_SECOND * (now - self._rate_updated))
            self._rate_updated = now


class Pacer:
    """The buckets of one service for one module run (one account and region); thread-safe.

    ``max_rate``: calls per second at most for each mutating bucket (None: the documented rates).
    """

    def __init__(self, service, max_rate=None, clock=time.monotonic, sleep=time.sleep):
        self.service = service
        self.buckets_table, self.action_buckets = TABLES[service]
        self.max_rate = max_rate
        self._clock = clock
        self._sleep = sleep
        self._buckets = {}
        self._lock = threading.Lock()

    @classmethod
    def for_service(cls, service, max_rate=None, **kwargs):
        """A Pacer for ``service``, or None for a service we do not pace."""
        return cls(service, max_rate, **kwargs) if service in TABLES else None

    def limits(self, name):
        """(capacity, rate) of bucket ``name`` as this pacer starts it."""
        capacity, rate = self.buckets_table[name]
        if self.max_rate and name != "non_mutating" and self.max_rate != rate:
            capacity, rate = max(1.0, capacity * self.max_rate / rate), float(self.max_rate)
        return capacity, rate

    def bucket(self, action):
        """(name, TokenBucket) for an API action (its operation name, such as DescribeInstances)."""
        name = bucket_of(action, self.action_buckets)
        with self._lock:
            if name not in self._buckets:
                capacity, rate = self.limits(name)
                self._buckets[name] = TokenBucket(capacity, rate, self._clock, self._sleep)
            return name, self._buckets[name]

    def rates(self):
        """{service/bucket: calls per second now} of the buckets used so far."""
        with self._lock:
            return dict(("{0}/{1}".format(self.service, name), round(bucket.rate, 3))
                        for name, bucket in sorted(self._buckets.items()))


class CallStats:
    """What a module run's calls did, over every client and thread: calls per action, throttled
    answers, seconds waited for the pacer."""

    def __init__(self):
        self.calls = {}
        self.throttled = 0
        self.paced_seconds = 0.0
        self.pacers = []
        self._lock = threading.Lock()

    def record(self, action, throttled=False, waited=0.0):
        with self._lock:
            self.calls[action] = self.calls.get(action, 0) + 1
            if throttled:
                self.throttled += 1
            self.paced_seconds += waited

    def summary(self):
        """The ``api_calls`` part of a result's ``timing``."""
        with self._lock:
            rates = {}
            for pacer in self.pacers:
                rates.update(pacer.rates())
            return {
                "api_calls": sum(self.calls.values()),
                "throttled": self.throttled,
                "paced_seconds": round(self.paced_seconds, 3),
                "calls_by_action": dict(sorted(self.calls.items())),
                "request_rates": rates,
            }
