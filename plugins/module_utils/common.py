# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What every concern of the collection shares: one error type, one retry policy, partitions
and ARNs. Nothing here knows about Ansible module objects, so unit tests reach it directly."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

try:
    import botocore.exceptions as _botocore_exceptions
except ImportError:  # pragma: no cover - the module reports the missing library itself
    _botocore_exceptions = None


class KeylessError(Exception):
    """A failure the user can act on: a sentence that names the thing, the cause and the fix.

    ``param`` names the module parameter at fault (bad input); ``code`` carries the AWS error
    code when AWS refused; ``details`` goes into the module's failure result as is.
    """

    def __init__(self, message, param=None, code=None, exception=None, **details):
        super(KeylessError, self).__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.exception = exception
        self.details = details


def error_code(exc):
    """The AWS error code of a botocore ClientError, else None."""
    response = getattr(exc, "response", None) or {}
    return response.get("Error", {}).get("Code")


def error_message(exc):
    response = getattr(exc, "response", None) or {}
    return response.get("Error", {}).get("Message") or str(exc)


def http_status(exc):
    response = getattr(exc, "response", None) or {}
    return response.get("ResponseMetadata", {}).get("HTTPStatusCode")


# What AWS answers when the caller's policies do not allow the call. EC2's message does not name
# the action ("You are not authorized to perform this operation."), so the failure does.
DENIED_CODES = frozenset(("UnauthorizedOperation", "AccessDenied", "AccessDeniedException"))
# The calls that hand a role to EC2 also need iam:PassRole on that role, and AWS's refusal does not
# say which of the two was missing
# (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/permission-to-pass-iam-roles.html).
PASSES_ROLE = frozenset(("ec2:RunInstances", "ec2:AssociateIamInstanceProfile",
                         "ec2:ReplaceIamInstanceProfileAssociation", "iam:AddRoleToInstanceProfile"))


def denied_action(exc):
    """The IAM action a refused call needed (``ec2:DescribeInstances``), as RetryingClient noted it
    on the error; else None."""
    return getattr(exc, "keyless_iam_action", None) if error_code(exc) in DENIED_CODES else None


def denied_note(exc):
    """What follows AWS's message when the caller's policies refused the call: the action to allow,
    unless AWS's message named it (' (ec2:DescribeInstances is not allowed to the caller)'); else ''."""
    action = denied_action(exc)
    if not action or action in error_message(exc):
        return ""
    if action in PASSES_ROLE:
        action = "{0}, or iam:PassRole on the role it gives,".format(action)
    return " ({0} is not allowed to the caller)".format(action)


def aws_failure(exc, doing):
    """Turn a botocore error into a KeylessError: '<doing> failed: AWS said <Code>: <message>'."""
    code = error_code(exc)
    if code:
        message = "{0} failed: AWS said {1}: {2}{3}".format(doing, code, error_message(exc).rstrip(), denied_note(exc))
    else:
        message = "{0} failed: {1}".format(doing, exc)
    return KeylessError(message, code=code, exception=exc)


def call_aws(doing, func, expected=(), **kwargs):
    """One AWS call, its failure said once: ``func(**kwargs)``; None when AWS answers one of the
    ``expected`` error codes (such as "not found" for a read, "already gone" for a delete);
    any other error a KeylessError '<doing> failed: AWS said <Code>: <message>'."""
    try:
        return func(**kwargs)
    except Exception as exc:  # pylint: disable=broad-except
        if expected and error_code(exc) in expected:
            return None
        raise aws_failure(exc, doing)


# ---- the retry policy ------------------------------------------------------------------

# Error codes that mean "try again later" on every AWS service we call.
THROTTLING_CODES = frozenset(
    (
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "SlowDown",
        "EC2ThrottledException",
        "PriorRequestNotComplete",
    )
)
SERVER_ERROR_CODES = frozenset(
    ("InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable", "ServiceFailure")
)


def is_throttle(exc):
    """AWS refused the call for its rate (a throttling error code)."""
    return error_code(exc) in THROTTLING_CODES


def is_retryable(exc):
    """Throttling, a 5xx answer, or a connection that failed: worth another try."""
    if _botocore_exceptions is None:
        return False
    if isinstance(exc, _botocore_exceptions.ClientError):
        code = error_code(exc)
        if code in THROTTLING_CODES or code in SERVER_ERROR_CODES:
            return True
        status = http_status(exc)
        return status is not None and status >= 500
    connection_errors = (
        _botocore_exceptions.ConnectionError,
        _botocore_exceptions.HTTPClientError,
        _botocore_exceptions.ReadTimeoutError,
    )
    return isinstance(exc, connection_errors)


class RetryPolicy:
    """Jittered exponential backoff ("full jitter"), bounded by time and, except for throttling,
    by attempts.

    A throttled answer is retried for as long as ``deadline`` lasts, however many times AWS says
    it: a sustained throttle means "slower", never "failed", while time remains. Other
    retryable errors (5xx, a broken connection) also stop after ``max_attempts``.
    ``should_retry(exc)`` decides; by default ``is_retryable``. ``with_extra`` adds a predicate
    for errors that mean "not yet" in one place only (IAM-to-EC2 propagation, for instance).
    ``max_attempts`` None: bounded by ``deadline`` only.
    """

    def __init__(self, max_attempts=10, base_delay=0.5, max_delay=20.0, deadline=300.0,
                 should_retry=is_retryable, sleep=time.sleep, clock=time.monotonic, rand=random.uniform):
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.deadline = deadline
        self.should_retry = should_retry
        self._sleep = sleep
        self._clock = clock
        self._rand = rand
        self._extra = None  # (predicate, deadline) of with_extra

    def with_extra(self, predicate, deadline=None):
        """A copy that also retries what ``predicate`` accepts; with ``deadline``, those errors
        for that many seconds instead of a number of attempts. The errors the policy retried already keep
        its own bounds (a throttle is not retried longer because the call also waits for
        something else)."""
        base = self.should_retry
        copy = RetryPolicy(
            max_attempts=self.max_attempts,
            base_delay=self.base_delay,
            max_delay=self.max_delay,
            deadline=self.deadline,
            should_retry=lambda exc: base(exc) or predicate(exc),
            sleep=self._sleep,
            clock=self._clock,
            rand=self._rand,
        )
        copy._extra = (base, deadline)
        return copy

    def _bounds(self, exc):
        """(max_attempts, deadline) for an error the policy retries (the extra predicate is not
        asked again: it may be a call of its own, such as asking IAM)."""
        if self._extra is not None and not self._extra[0](exc):
            deadline = self._extra[1]
            if deadline is None:
                return self.max_attempts, self.deadline
            return None, deadline
        return self.max_attempts, self.deadline

    def delays(self):
        attempt = 0
        while True:
            yield self._rand(0, min(self.max_delay, self.base_delay * (2 ** attempt)))
            attempt += 1

    def call(self, func, *args, **kwargs):
        return self.run(lambda: func(*args, **kwargs))

    def run(self, attempt, paced=False):
        """``attempt()`` until it returns or the policy gives up (then its last error is raised).

        ``paced``: ``attempt`` waits for a client-side token bucket that a throttled answer
        empties (pacing.py), so a throttle is retried without a backoff sleep of its own."""
        started = self._clock()
        delays = self.delays()
        attempts = 1
        while True:
            try:
                return attempt()
            except Exception as exc:  # pylint: disable=broad-except
                if not self.should_retry(exc):
                    raise
                max_attempts, deadline = self._bounds(exc)
                throttle = is_throttle(exc)
                if not throttle:
                    if max_attempts is not None and attempts >= max_attempts:
                        raise
                    attempts += 1
                delay = 0.0 if throttle and paced else next(delays)
                if self._clock() + delay - started > deadline:
                    raise
                if delay:
                    self._sleep(delay)


class Timing:
    """Sleep and clock of the polling loops, replaceable in tests (nothing in the unit tests ever
    really sleeps): the first poll at ``poll_interval``, doubling up to ``max_poll_interval``."""

    def __init__(self, sleep=time.sleep, clock=time.monotonic, poll_interval=1.0, max_poll_interval=10.0):
        self.sleep = sleep
        self.clock = clock
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval


class RetryingClient:
    """A boto3 client whose every API call goes through one RetryPolicy, and, with a ``pacer``
    (pacing.Pacer), waits for a token of its action's bucket before each attempt.

    Unlike amazon.aws's wrapper (retries only with ``aws_retry=True`` and never on a broken
    connection), every call is retried, so no call site can forget to. ``stats``
    (pacing.CallStats, shared by a module's clients) counts every attempt and throttled answer.
    """

    _PASS_THROUGH = ("get_paginator", "can_paginate", "get_waiter", "generate_presigned_url", "close")

    def __init__(self, client, policy=None, pacer=None, stats=None):
        self.client = client
        self.policy = policy or RetryPolicy()
        self.pacer = pacer
        self.stats = stats

    def with_extra(self, predicate, deadline=None):
        """The same client, its calls also retrying what ``predicate`` accepts (see
        ``RetryPolicy.with_extra``): the one way to add a "not yet" error where it means that."""
        return RetryingClient(self.client, self.policy.with_extra(predicate, deadline), self.pacer, self.stats)

    @property
    def meta(self):
        return self.client.meta

    @property
    def exceptions(self):
        return self.client.exceptions

    def _action(self, name):
        mapping = getattr(getattr(self.client, "meta", None), "method_to_api_mapping", None) or {}
        return mapping.get(name) or "".join(part.capitalize() for part in name.split("_"))

    def _iam_action(self, action):
        """``<service>:<Action>`` as IAM names it: botocore's service name is IAM's prefix for every
        service we call (ec2, iam, sts, cloudwatch, sqs, events, organizations, autoscaling)."""
        model = getattr(getattr(self.client, "meta", None), "service_model", None)
        service = getattr(model, "service_name", None)
        return "{0}:{1}".format(service, action) if isinstance(service, str) else None

    def __getattr__(self, name):
        attribute = getattr(self.client, name)
        if name in self._PASS_THROUGH or name.startswith("_") or not callable(attribute):
            return attribute
        policy, pacer, stats = self.policy, self.pacer, self.stats
        action = self._action(name)
        iam_action = self._iam_action(action)

        def call(*args, **kwargs):
            bucket = pacer.bucket(action)[1] if pacer is not None else None

            def attempt():
                waited = bucket.take() if bucket is not None else 0.0
                try:
                    answer = attribute(*args, **kwargs)
                except Exception as exc:
                    if iam_action is not None:
                        try:
                            exc.keyless_iam_action = iam_action  # for aws_failure's message
                        except AttributeError:
                            pass
                    throttled = is_throttle(exc)
                    if bucket is not None:
                        if throttled:
                            bucket.throttled()
                        else:
                            bucket.answered()
                    if stats is not None:
                        stats.record(action, throttled, waited)
                    raise
                if bucket is not None:
                    bucket.answered()
                if stats is not None:
                    stats.record(action, False, waited)
                return answer

            return policy.run(attempt, paced=bucket is not None)

        call.__name__ = name
        return call


def retrying(client):
    """``client`` as a RetryingClient (a plain boto3 client gets the default policy)."""
    return client if isinstance(client, RetryingClient) else RetryingClient(client)


def poll(read, done, timeout, timing, describe_timeout):
    """The one polling loop: ``read()`` at once, then again with growing intervals (Timing),
    until ``done(value)``; returns the last value read. When ``timeout`` seconds would pass
    before the next read, raises ``describe_timeout(value)`` (a KeylessError)."""
    started = timing.clock()
    interval = timing.poll_interval
    while True:
        value = read()
        if done(value):
            return value
        if timing.clock() - started + interval > timeout:
            raise describe_timeout(value)
        timing.sleep(interval)
        interval = min(interval * 2, timing.max_poll_interval)


PHASES = ("read", "plan", "apply", "wait")


class Stopwatch:
    """Seconds per phase of a run (read, plan, apply, wait) by ``clock``; ``result(clients)``
    is the ``timing`` a fleet module returns: the phases and what the calls did (their
    ``CallStats``), so "why did this take three minutes" has its answer in the task result."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._started = clock()
        self.seconds = dict((name, 0.0) for name in PHASES)

    @contextlib.contextmanager
    def phase(self, name):
        started = self._clock()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + self._clock() - started

    def result(self, *clients):
        seconds = dict((name, round(value, 3)) for name, value in self.seconds.items())
        seconds["total"] = round(self._clock() - self._started, 3)
        timing = {"seconds": seconds}
        stats = []
        for client in clients:
            found = getattr(client, "stats", None)
            if found is not None and all(found is not s for s in stats):
                stats.append(found)
        for found in stats:
            summary = found.summary()
            for key, value in summary.items():
                if isinstance(value, dict):
                    timing.setdefault(key, {}).update(value)
                else:
                    timing[key] = timing.get(key, 0) + value
        return timing


def in_parallel(func, items, max_workers):
    """``[func(item) for item in items]``, ``max_workers`` at a time (boto3 clients are
    thread-safe; the pacer keeps the rate). After the first failure no new item starts, and that
    failure is raised once the items already started are done."""
    items = list(items)
    if max_workers <= 1 or len(items) <= 1:
        return [func(item) for item in items]
    stop = threading.Event()
    failures = []

    def guarded(item):
        if stop.is_set():
            return None
        try:
            return func(item)
        except Exception as exc:  # pylint: disable=broad-except
            stop.set()
            failures.append(exc)
            return None

    with ThreadPoolExecutor(max_workers=min(max_workers, len(items))) as pool:
        results = list(pool.map(guarded, items))
    if failures:
        raise failures[0]
    return results


def diff_entry(header, before, after):
    """One entry of a module's ``diff`` list: the same header before and after."""
    return {"before_header": header, "after_header": header, "before": before, "after": after}


def failure_result(error):
    """The failure result of a KeylessError, as every module returns it: the sentence, the
    parameter at fault, the AWS error code and response when AWS refused, the details."""
    failure = dict(error.details)
    failure["msg"] = error.message
    if error.param:
        failure["param"] = error.param
    if error.code:
        failure["code"] = error.code
    return failure


def botocore_config():
    """Client configuration: botocore's own retries off (our policy is the only one)."""
    return {"retries": {"total_max_attempts": 1, "mode": "standard"}}


def paginate(call, result_key, token_in="Marker", token_out="Marker", **kwargs):
    """Every item of a paginated AWS list call, one retried call per page."""
    items = []
    while True:
        page = call(**kwargs)
        items.extend(page.get(result_key) or [])
        token = page.get(token_out)
        if token_out == "Marker" and not page.get("IsTruncated"):
            token = None
        if not token:
            return items
        kwargs[token_in] = token


# ---- partitions and ARNs -----------------------------------------------------------------

_PARTITION_PREFIXES = (
    ("cn-", "aws-cn"),
    ("us-gov-", "aws-us-gov"),
    ("us-isob-", "aws-iso-b"),
    ("us-iso-", "aws-iso"),
    ("eu-isoe-", "aws-iso-e"),
    ("us-isof-", "aws-iso-f"),
)
PARTITIONS = ("aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f")


def partition_for_region(region):
    """The AWS partition a region belongs to ('aws' for commercial and unknown regions)."""
    for prefix, partition in _PARTITION_PREFIXES:
        if (region or "").startswith(prefix):
            return partition
    return "aws"


_ARN = re.compile(r"^arn:(?P<partition>aws[a-z-]*):(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9-]*):"
                  r"(?P<account>\d{12}|aws|):(?P<resource>.+)$")


def parse_arn(arn):
    """Split an ARN into a dict (partition, service, region, account, resource_type, path, name),
    or None when the text is not an ARN."""
    match = _ARN.match(arn or "")
    if not match:
        return None
    parts = match.groupdict()
    resource = parts.pop("resource")
    resource_type, _sep, rest = resource.partition("/")
    path, _sep, name = rest.rpartition("/")
    parts.update(resource_type=resource_type, path="/" + path + "/" if path else "/", name=name)
    return parts


def looks_like_arn(text):
    return (text or "").startswith("arn:")
