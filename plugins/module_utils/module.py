# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one place where our logic meets Ansible's module object: clients with the shared retry
policy and pacing, and KeylessError turned into the failure result every module returns."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:  # AnsibleAWSModule reports a missing botocore itself
    BotoCoreError = ClientError = ()

from ansible_collections.amazon.aws.plugins.module_utils.botocore import gather_sdk_versions
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.keyless.aws.plugins.module_utils import assume
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import RetryingClient
from ansible_collections.keyless.aws.plugins.module_utils.common import RetryPolicy
from ansible_collections.keyless.aws.plugins.module_utils.common import botocore_config
from ansible_collections.keyless.aws.plugins.module_utils.common import failure_result
from ansible_collections.keyless.aws.plugins.module_utils.pacing import CallStats
from ansible_collections.keyless.aws.plugins.module_utils.pacing import Pacer


class KeylessModule(AnsibleAWSModule):
    """AnsibleAWSModule (same connection options, environment variables, module_defaults
    group and error format as amazon.aws) with the collection's retry policy and errors."""

    def __init__(self, **kwargs):
        super(KeylessModule, self).__init__(**kwargs)
        # Retries are bounded by the task's own patience where it has one (a throttle never
        # fails a call while wait_timeout lasts).
        wait_timeout = self.params.get("wait_timeout")
        self.retry_policy = RetryPolicy(deadline=float(wait_timeout)) if wait_timeout else RetryPolicy()
        self.call_stats = CallStats()
        self._clients = {}
        # The module's assume_role option (assume.py), checked before any call; the role is
        # assumed when the first client is made.
        self._assumed_account = None
        self._assume_call = None
        self._credentials = None
        if self.params.get("assume_role"):
            try:
                self._assume_call = assume.checked(self.params["assume_role"])
            except KeylessError as error:
                self.fail_keyless(error)

    def warn(self, warning):  # pylint: disable=arguments-differ
        """Warn through Ansible's own module warning. AnsibleAWSModule (amazon.aws 10) keeps its
        warnings and hands them to exit_json as ``warnings=``, which ansible-core 2.19 deprecates
        (removed in 2.23); ansible-core returns warnings by itself."""
        self._module.warn(warning)

    def retrying_client(self, service, **config):
        """One client per service per run, every call through the shared retry policy and, for
        the services AWS throttles by published buckets, the run's pacer (pacing.py;
        ``max_request_rate`` when the module has that option); all counted in ``call_stats``.

        ``config``: extra botocore settings, used when the client is first made (for example
        ``max_pool_connections`` for a client that parallel threads share)."""
        if service not in self._clients:
            settings = botocore_config()
            settings.update(config)
            raw = self.client(service, config=settings, **self._assumed_credentials())
            pacer = Pacer.for_service(service, max_rate=self.params.get("max_request_rate"))
            if pacer is not None:
                self.call_stats.pacers.append(pacer)
            self._clients[service] = RetryingClient(raw, self.retry_policy, pacer, self.call_stats)
        return self._clients[service]

    def _assumed_credentials(self):
        """The credentials of the assume_role option's session (assumed once, with the
        connection's own credentials; AssumeRole is not paced: STS has no EC2-like bucket), or
        nothing to add when the option is not given."""
        if self._assume_call is None:
            return {}
        if self._credentials is None:
            sts = RetryingClient(self.client("sts", config=botocore_config()), self.retry_policy, None, self.call_stats)
            self._credentials, self._assumed_account = assume.assume(sts, self._assume_call, self.params.get("target"))
        return self._credentials

    def assumed_account_id(self):
        """The account of the assume_role option's session (the role assumed now if it was not
        yet); None without the option."""
        self._assumed_credentials()
        return self._assumed_account

    def fail_keyless(self, error):
        """Fail with a KeylessError's result (``failure_result``), the AWS error's response when
        AWS refused, and the SDK versions, as amazon.aws modules report them."""
        failure = failure_result(error)
        response = getattr(error.exception, "response", None)
        if response is not None:
            failure.update(camel_dict_to_snake_dict(response))
        elif error.exception is not None:
            failure["error"] = {"message": str(error.exception)}
        failure.update(gather_sdk_versions())
        self.fail_json(**failure)

    def run(self, func, *args, **kwargs):
        """Call ``func`` and exit with its result; a KeylessError becomes the failure result."""
        try:
            result = func(*args, **kwargs)
        except KeylessError as error:
            self.fail_keyless(error)
        except (BotoCoreError, ClientError) as error:  # a call site that did not say what it was doing
            self.fail_json_aws(error)
        for warning in result.pop("warnings", []):
            self.warn(warning)
        self.exit_json(**result)
