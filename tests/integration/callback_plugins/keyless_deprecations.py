# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Test-only callback: every deprecation a keyless.aws module's result carries, one JSON line each,
into the file $KEYLESS_DEPRECATIONS_FILE (runner.run_playbook fails the test on any).

ansible.cfg turns deprecation warnings off (amazon.aws's own modules announce removals that are
not ours to act on); this sees the deprecations of our modules' results whatever the setting."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "keyless_deprecations"
    CALLBACK_NEEDS_ENABLED = True

    def _record(self, result):
        action = getattr(result._task, "action", "") or ""  # pylint: disable=protected-access
        if not action.startswith("keyless.aws."):
            return
        found = list(getattr(result, "deprecations", None) or result._result.get("deprecations") or [])  # pylint: disable=protected-access
        path = os.environ.get("KEYLESS_DEPRECATIONS_FILE")
        if not found or not path:
            return
        with open(path, "a") as handle:
            for deprecation in found:
                if isinstance(deprecation, dict):
                    text = deprecation.get("msg")
                else:  # ansible-core 2.19: a DeprecationSummary, its sentence in .event.msg
                    text = getattr(getattr(deprecation, "event", None), "msg", None) or str(deprecation)
                handle.write(json.dumps({"action": action, "task": result.task_name, "msg": text}) + "\n")

    def v2_runner_on_ok(self, result):
        self._record(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result)

    def v2_runner_item_on_ok(self, result):
        self._record(result)

    def v2_runner_item_on_failed(self, result):
        self._record(result)
