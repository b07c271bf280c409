# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """The attributes every keyless.aws module declares, documented once."""

    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check mode and return a prediction of what a real run changes, without changing anything.
  diff_mode:
    description: Returns details on what has changed (or, in check mode, would change) when run with C(--diff).
  idempotent:
    description:
      - When run twice in a row with the same arguments, the second run reports no change.
      - A check-mode run predicts exactly what a real run with the same arguments changes.
"""

    # For modules that read only.
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - This module changes nothing, so check mode runs it as usual.
  diff_mode:
    support: N/A
    details:
      - This module changes nothing.
  idempotent:
    support: full
"""

    # The action group every module belongs to.
    ACTIONGROUP = r"""
options: {}
attributes:
  action_group:
    description:
      - Use C(group/keyless.aws.aws) in C(module_defaults) to set defaults for this module.
      - That group also holds every module of C(amazon.aws.aws), so one C(module_defaults) entry reaches both collections.
    support: full
    membership:
      - keyless.aws.aws
"""
