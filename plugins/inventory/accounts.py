# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Inventory of AWS accounts times regions: one host per pair, for plays that assume a role there.

The accounts come from a static list, from AWS Organizations, or both; every host is an API
target (``ansible_connection: local``), never an SSH target.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: accounts
short_description: One host per AWS account and region, to run a play in many accounts the way AWX runs them
version_added: 0.2.0
description:
  - Makes one inventory host for each pair of an AWS account and a region. The accounts come from the static
    list O(accounts), from AWS Organizations (O(organizations=true)), or from both; the regions from O(regions).
  - The hosts are API targets, not machines - each has C(ansible_connection=local) and the variables a play needs
    to act in its account and region - C(keyless_account_id), C(keyless_account_name), C(keyless_region),
    C(keyless_partition), C(keyless_role_arn) (the role to assume there), C(keyless_external_id), C(keyless_ou),
    C(keyless_ou_id) and C(keyless_ou_path).
  - Every host is in the group C(keyless_accounts), the hosts the collection's playbooks (C(provision.yml),
    C(harden.yml), C(audit.yml)) run on, each with the credentials of its C(keyless_role_arn).
  - Each host is in the groups C(account_<id>) (for example C(account_123456789012)), C(region_<region>) (for
    example C(region_eu_west_1)) and, when its organizational unit is known, C(ou_<name>) for its OU and for each
    OU above it up to the one O(organizations_ou_id) names (for example C(ou_workloads) and C(ou_prod)). Group
    names are lowercased, and every run of characters other than letters, digits and C(_) becomes C(_); an OU
    whose name has none of those characters is grouped by its id (C(ou_ou_ab12_cdef5678)).
  - The inventory file is a YAML file whose name ends in C(keyless_accounts.yml) or C(keyless_accounts.yaml), for
    example C(prod.keyless_accounts.yml).
  - Options that are not about AWS Organizations need no AWS call; a static list is read without credentials.
author:
  - keyless.aws maintainers (@keyless-aws)
notes:
  - AWS Organizations answers only the management account of the organization and its delegated administrators
    (U(https://docs.aws.amazon.com/organizations/latest/APIReference/API_ListAccounts.html)). The credentials need
    C(organizations:ListAccounts), or with O(organizations_ou_id) C(organizations:ListAccountsForParent) and
    C(organizations:DescribeOrganizationalUnit) (C(organizations:ListRoots) for a root id), and
    C(organizations:ListOrganizationalUnitsForParent) with O(organizations_ou_recursive=true).
  - Only accounts whose C(State) and C(Status) are C(ACTIVE) become hosts; suspended, closed, pending-closure and
    pending-activation accounts are left out; see
    U(https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_accounts_account_state.html).
  - All the O(regions) must be in one partition (C(aws), C(aws-cn), C(aws-us-gov), ...); an account exists in one
    partition only. Write one inventory file per partition.
  - The hosts run modules on the controller. When the Python Ansible finds there lacks boto3, set
    C(ansible_python_interpreter) for the hosts (in group_vars, or with O(compose)).
extends_documentation_fragment:
  - inventory_cache
  - constructed
  - amazon.aws.boto3
  - amazon.aws.common.plugins
  - amazon.aws.region.plugins
  - amazon.aws.assume_role.plugins
options:
  plugin:
    description: The name of this plugin; an inventory file with any other value is not this plugin's.
    required: true
    type: str
    choices: ["keyless.aws.accounts"]
  regions:
    description:
      - The regions each account becomes a host in, for example V(eu-west-1). At least one; all in one partition.
      - The region the AWS Organizations call goes to is O(region), else the first of these.
    type: list
    elements: str
    default: []
  accounts:
    description:
      - A static list of accounts. With O(organizations=true) as well, an entry whose id AWS Organizations lists
        adds its settings to that account (for example its own O(accounts[].role_arn)); an entry AWS
        Organizations does not list is a host all the same, unless AWS Organizations lists it as not active.
      - An account id is a string of 12 digits; quote it in YAML (V("012345678901")), or a leading zero is lost.
    type: list
    elements: dict
    default: []
    suboptions:
      id:
        description: The 12-digit account id.
        type: str
        required: true
      name:
        description: A name for the account (the host name starts with it). Defaults to the name AWS
          Organizations has for it, else none.
        type: str
      ou:
        description: The name of the account's organizational unit, for the C(ou_<name>) group and C(keyless_ou).
        type: str
      role_arn:
        description:
          - The full ARN of the role to assume in this account, instead of the one built from O(role_name) and
            O(role_path). It must be a role of this account, in the partition of O(regions).
        type: str
      external_id:
        description: The external id to assume the role with in this account, instead of O(external_id).
        type: str
  organizations:
    description:
      - Read the accounts from AWS Organizations (C(ListAccounts), or C(ListAccountsForParent) with
        O(organizations_ou_id)), every page of them.
    type: bool
    default: false
  organizations_ou_id:
    description:
      - Only the accounts directly under this organizational unit (V(ou-ab12-cdef5678)) or root (V(r-ab12)).
      - Needs O(organizations=true). Without it, the accounts have no OU (C(keyless_ou) is null and they are in
        no C(ou_) group); name the root (V(r-...)) with O(organizations_ou_recursive=true) to group every account
        of the organization by OU.
    type: str
  organizations_ou_recursive:
    description:
      - With O(organizations_ou_id), also the accounts of every OU below it, at any depth.
    type: bool
    default: false
  role_name:
    description:
      - The name of the role to assume in each account; its ARN is built from the partition of O(regions), the
        account id, O(role_path) and this name (C(arn:aws:iam::123456789012:role/OrganizationAccountAccessRole)).
      - The default is the role AWS Organizations creates in the accounts it creates
        (U(https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_accounts_access.html)).
    type: str
    default: OrganizationAccountAccessRole
  role_path:
    description: The IAM path of that role, V(/) or for example V(/automation/).
    type: str
    default: /
  external_id:
    description:
      - The external id to assume the role with, in every account that does not set its own
        (O(accounts[].external_id)). STS takes 2 to 1224 letters, digits and C(_+=,.@:/-).
    type: str
  hostname_template:
    description:
      - A Jinja2 template for the host names, rendered with the host's C(keyless_) variables, for example
        V({{ keyless_account_id }}-{{ keyless_region }}). Two hosts with the same name fail the inventory.
      - Without it, a host is named C(<account name>-<region>), or C(<account id>-<region>) for an account with no
        name; accounts that share a name get C(<name>-<id>-<region>), with a warning.
      - Either way the name is lowercased, and every run of characters other than letters, digits, C(.), C(_) and
        C(-) becomes C(-).
    type: str
"""

EXAMPLES = r"""
# prod.keyless_accounts.yml - two accounts in two regions: four hosts, such as
# payments-eu-west-1 in the groups account_111122223333, region_eu_west_1 and ou_prod.
plugin: keyless.aws.accounts
regions:
  - eu-west-1
  - us-east-1
accounts:
  - id: "111122223333"
    name: payments
    ou: prod
  - id: "444455556666"
    name: shop
    ou: prod
    # This account has a role of its own, which trusts the automation account with an external id.
    role_arn: arn:aws:iam::444455556666:role/automation/keyless-deployer
    external_id: shop-2f1c

---

# org.keyless_accounts.yml - every active account of the organization, read from the management account,
# in one region, with the role the landing zone created everywhere; cached for an hour.
plugin: keyless.aws.accounts
organizations: true
regions:
  - eu-central-1
role_name: keyless-automation
role_path: /platform/
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: /tmp/keyless-accounts-cache
cache_timeout: 3600

---

# workloads.keyless_accounts.yml - the accounts of the Workloads OU and of every OU below it. Each host is in
# ou_workloads and in the group of its own OU (ou_prod, ou_staging, ...). Organizations is read with a role
# of the management account; keyed_groups and compose work as in every constructed inventory.
plugin: keyless.aws.accounts
organizations: true
organizations_ou_id: ou-ab12-cdef5678
organizations_ou_recursive: true
assume_role_arn: arn:aws:iam::999988887777:role/read-organization
regions:
  - eu-west-1
  - eu-central-1
hostname_template: "{{ keyless_account_id }}-{{ keyless_region }}"
keyed_groups:
  - key: keyless_partition
    prefix: partition
compose:
  ansible_python_interpreter: "'/usr/bin/python3'"

---

# GovCloud: the partition follows the regions (the role ARN is arn:aws-us-gov:iam::...).
plugin: keyless.aws.accounts
regions:
  - us-gov-west-1
accounts:
  - id: "123456789012"
    name: gov-data
"""

import re

try:
    import botocore.exceptions
except ImportError:
    pass  # amazon.aws's require_aws_sdk() reports it

from ansible.errors import AnsibleError
from ansible.errors import AnsibleParserError
from ansible.module_utils.common.text.converters import to_native

try:
    from ansible.template import trust_as_template
    wrap_var = None
except ImportError:  # ansible-core < 2.19: every string is a template unless wrapped as unsafe
    trust_as_template = None
    from ansible.utils.unsafe_proxy import wrap_var

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.plugin_utils.botocore import AnsibleBotocoreError
from ansible_collections.amazon.aws.plugins.plugin_utils.inventory import AWSInventoryBase

# The partitions and their region names, from botocore's data/partitions.json ("regionRegex" of each
# partition). botocore's patterns allow any word character between the dashes; AWS's region names are
# lowercase letters there, and we take that stricter reading (exact rule not published).
REGION_PARTITIONS = (
    ("aws", re.compile(r"^(us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-[0-9]+$")),
    ("aws-cn", re.compile(r"^cn-[a-z]+-[0-9]+$")),
    ("aws-us-gov", re.compile(r"^us-gov-[a-z]+-[0-9]+$")),
    ("aws-iso", re.compile(r"^us-iso-[a-z]+-[0-9]+$")),
    ("aws-iso-b", re.compile(r"^us-isob-[a-z]+-[0-9]+$")),
    ("aws-iso-e", re.compile(r"^eu-isoe-[a-z]+-[0-9]+$")),
    ("aws-iso-f", re.compile(r"^us-isof-[a-z]+-[0-9]+$")),
    ("aws-eusc", re.compile(r"^eusc-de-[a-z]+-[0-9]+$")),
)
# Organizations' shapes in botocore's organizations/2016-11-28/service-2.json: AccountId "^\d{12}$",
# ParentId "^(r-[0-9a-z]{4,32})|(ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})$" (anchored as a whole here, the stricter
# reading of that alternation).
ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
PARENT_ID = re.compile(r"^(r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})$")
# IAM's roleNameType ([\w+=,.@-]+, 1 to 64) and pathType ("/" or "/" printable ASCII "/", at most 512), from
# botocore's iam/2010-05-08/service-2.json.
ROLE_NAME = re.compile(r"^[A-Za-z0-9_+=,.@-]{1,64}$")
ROLE_PATH = re.compile(r"^/([\x21-\x7e]*/)?$")
ROLE_ARN = re.compile(r"^arn:(?P<partition>aws(-[a-z]+)*):iam::(?P<account>[0-9]{12}):role(?P<path>/([\x21-\x7e]*/)?)"
                      r"(?P<name>[^/]+)$")
# STS AssumeRole ExternalId: 2 to 1224 characters of [\w+=,.@:/-]
# (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html, externalIdType of botocore's sts model).
EXTERNAL_ID = re.compile(r"^[A-Za-z0-9_+=,.@:/-]{2,1224}$")
ACCOUNT_KEYS = ("id", "name", "ou", "role_arn", "external_id")
# ListAccounts, ListAccountsForParent and ListOrganizationalUnitsForParent take MaxResults 1 to 20 (the
# MaxResults shape of botocore's organizations model); the most a page may hold, so the fewest calls.
PAGE_SIZE = 20
ACTIVE = "ACTIVE"
# Every host's group: playbooks/provision.yml, harden.yml and audit.yml run on it when it exists.
ALL_GROUP = "keyless_accounts"


def plain(value):
    """A str option as a plain str: ansible-core 2.19 tags the strings of the inventory file (origin, trusted as
    template); the values the hosts carry, and the cache keeps, are data."""
    return str(value) if isinstance(value, str) else value


def partition_of(region):
    """The partition whose region names ``region`` follows, else None (not a region name)."""
    for partition, pattern in REGION_PARTITIONS:
        if isinstance(region, str) and pattern.match(region):
            return partition
    return None


def group_name(prefix, value):
    """``<prefix>_<value>``, lowercased, every run of characters but [a-z0-9_] made one '_'; None when
    nothing of ``value`` is left."""
    cleaned = re.sub(r"[^a-z0-9_]+", "_", str(value).lower()).strip("_")
    return "{0}_{1}".format(prefix, cleaned) if cleaned else None


def host_name(text):
    """A readable host name: lowercased, every run of characters but [a-z0-9._-] made one '-'."""
    return re.sub(r"[^a-z0-9._-]+", "-", str(text).lower()).strip("-.")


def is_active(account):
    """Whether Organizations says the account is in use: its State and (deprecated) Status, each when
    present, are ACTIVE. ListAccounts returns SUSPENDED, PENDING_CLOSURE, CLOSED and PENDING_ACTIVATION accounts
    too (the AccountState and AccountStatus enums of botocore's organizations model)."""
    states = [account.get(key) for key in ("State", "Status") if account.get(key) is not None]
    return bool(states) and all(state == ACTIVE for state in states)


class InventoryModule(AWSInventoryBase):
    NAME = "keyless.aws.accounts"
    INVENTORY_FILE_SUFFIXES = ("keyless_accounts.yml", "keyless_accounts.yaml")

    def __init__(self):
        super(InventoryModule, self).__init__()
        self._organizations_client = None

    # ---- options ---------------------------------------------------------------------
    def _fail(self, option, message):
        raise AnsibleParserError("{0}: {1}: {2}".format(self.NAME, option, message))

    def _regions(self):
        regions = self.get_option("regions") or []
        if not isinstance(regions, list) or not regions:
            self._fail("regions", "give at least one region, for example [eu-west-1, us-east-1].")
        unique = []
        for region in regions:
            if partition_of(region) is None:
                self._fail("regions", "{0!r} is not an AWS region name; a region name looks like us-east-1, "
                                      "eu-west-1, cn-north-1 or us-gov-west-1.".format(region))
            if plain(region) not in unique:
                unique.append(plain(region))
        partitions = sorted(set(partition_of(region) for region in unique))
        if len(partitions) > 1:
            self._fail("regions", "the regions {0} are in {1} partitions ({2}); an account exists in one partition "
                                  "only: write one inventory file per partition.".format(
                                      ", ".join(unique), len(partitions), ", ".join(partitions)))
        return unique, partitions[0]

    def _account_id(self, value, option):
        # YAML reads an unquoted 123456789012 as a number; one with a leading zero loses it (or is octal).
        text = str(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else value
        if not isinstance(text, str) or not ACCOUNT_ID.match(text):
            self._fail(option, "{0!r} is not an AWS account id; an account id is 12 digits, such as "
                               "\"123456789012\" (quote it in YAML).".format(value))
        return text

    def _external_id(self, value, option):
        if value is None:
            return None
        if not isinstance(value, str) or not EXTERNAL_ID.match(value):
            self._fail(option, "{0!r} is not an external id STS takes: 2 to 1224 letters, digits and "
                               "_+=,.@:/- (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html)."
                               .format(value))
        return plain(value)

    def _role_arn(self, value, option, account_id, partition):
        match = ROLE_ARN.match(value) if isinstance(value, str) else None
        if not match or not ROLE_NAME.match(match.group("name")) or len(match.group("path")) > 512 \
                or "//" in match.group("path"):
            self._fail(option, "{0!r} is not the ARN of an IAM role; expected arn:{1}:iam::{2}:role/NAME or "
                               "arn:{1}:iam::{2}:role/PATH/NAME.".format(value, partition, account_id))
        if match.group("account") != account_id:
            self._fail(option, "{0} is a role of account {1}, not of account {2}; the role to assume must be in the "
                               "account itself.".format(value, match.group("account"), account_id))
        if match.group("partition") != partition:
            self._fail(option, "{0} is in the {1} partition, but the regions are in {2}.".format(
                value, match.group("partition"), partition))
        return plain(value)

    def _static_accounts(self, partition):
        accounts = self.get_option("accounts") or []
        if not isinstance(accounts, list):
            self._fail("accounts", "give a list of accounts, each a dict with an id.")
        found = []
        seen = {}
        for index, entry in enumerate(accounts):
            option = "accounts[{0}]".format(index)
            if not isinstance(entry, dict):
                self._fail(option, "{0!r} is not a dict; give each account as a dict with at least an id, for "
                                   "example {{id: \"123456789012\", name: prod}}.".format(entry))
            unknown = sorted(set(entry) - set(ACCOUNT_KEYS))
            if unknown:
                self._fail(option, "unknown key(s) {0}; an account takes {1}.".format(
                    ", ".join(map(str, unknown)), ", ".join(ACCOUNT_KEYS)))
            if entry.get("id") is None:
                self._fail(option + ".id", "every account needs its 12-digit id.")
            account_id = self._account_id(entry["id"], option + ".id")
            if account_id in seen:
                self._fail(option + ".id", "account {0} is listed twice (also as accounts[{1}]).".format(
                    account_id, seen[account_id]))
            seen[account_id] = index
            for key in ("name", "ou"):
                if entry.get(key) is not None and (not isinstance(entry[key], str) or not entry[key].strip()):
                    self._fail("{0}.{1}".format(option, key), "give a non-empty string, not {0!r}.".format(entry[key]))
            role_arn = entry.get("role_arn")
            if role_arn is not None:
                role_arn = self._role_arn(role_arn, option + ".role_arn", account_id, partition)
            found.append({
                "id": account_id,
                "name": plain(entry.get("name")),
                "ou": plain(entry.get("ou")),
                "role_arn": role_arn,
                "external_id": self._external_id(entry.get("external_id"), option + ".external_id"),
            })
        return found

    def _settings(self):
        regions, partition = self._regions()
        static = self._static_accounts(partition)
        organizations = self.get_option("organizations")
        ou_id = plain(self.get_option("organizations_ou_id"))
        recursive = self.get_option("organizations_ou_recursive")
        if ou_id is not None:
            if not isinstance(ou_id, str) or not PARENT_ID.match(ou_id):
                self._fail("organizations_ou_id", "{0!r} is not the id of an organizational unit (ou-ab12-cdef5678) "
                                                  "or of a root (r-ab12).".format(ou_id))
            if not organizations:
                self._fail("organizations_ou_id", "set organizations: true as well, to read the accounts of {0} "
                                                  "from AWS Organizations.".format(ou_id))
        if recursive and ou_id is None:
            self._fail("organizations_ou_recursive", "name the organizational unit to walk down from with "
                                                     "organizations_ou_id (a root id r-... for the whole "
                                                     "organization).")
        if not static and not organizations:
            self._fail("accounts", "no accounts: list them in accounts, or set organizations: true to read them "
                                   "from AWS Organizations.")
        role_name = self.get_option("role_name")
        if not isinstance(role_name, str) or not ROLE_NAME.match(role_name):
            self._fail("role_name", "{0!r} is not an IAM role name: 1 to 64 letters, digits and _+=,.@-.".format(
                role_name))
        role_path = self.get_option("role_path")
        if not isinstance(role_path, str) or not ROLE_PATH.match(role_path) or "//" in role_path \
                or len(role_path) > 512:
            self._fail("role_path", "{0!r} is not an IAM path; a path is / or starts and ends with / and holds "
                                    "printable ASCII with no spaces, for example /automation/.".format(role_path))
        template = self.get_option("hostname_template")
        if template is not None and (not isinstance(template, str) or not template.strip()):
            self._fail("hostname_template", "give a Jinja2 template such as "
                                            "'{{ keyless_account_id }}-{{ keyless_region }}'.")
        return {
            "regions": regions,
            "partition": partition,
            "static": static,
            "organizations": bool(organizations),
            "query": {"ou_id": ou_id, "recursive": bool(recursive)},
            "role_name": plain(role_name),
            "role_path": plain(role_path),
            "external_id": self._external_id(self.get_option("external_id"), "external_id"),
            "hostname_template": template,
        }

    # ---- AWS Organizations -----------------------------------------------------------
    def _set_frozen_credentials(self):
        """Deferred: the base class assumes O(assume_role_arn) as it parses; this inventory assumes it only
        when it calls AWS Organizations (not for a static list, not when the cache answers)."""

    def _organizations(self, region):
        if self._organizations_client is None:
            if self.get_option("assume_role_arn") and not self._frozen_credentials:
                super(InventoryModule, self)._set_frozen_credentials()
            self._organizations_client = self.client(
                "organizations", region=self.region or region, retry_decorator=AWSRetry.jittered_backoff(retries=10))
        return self._organizations_client

    def _call(self, client, operation, **params):
        """One Organizations call (throttling retried). An OU or root that does not exist is bad input
        (OrganizationalUnitNotFoundException of DescribeOrganizationalUnit, ParentNotFoundException of the
        List*ForParent calls: the errors of each operation in botocore's organizations model)."""
        try:
            return getattr(client, operation)(aws_retry=True, **params)
        except botocore.exceptions.ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            message = error.response.get("Error", {}).get("Message") or to_native(error)
            if code in ("OrganizationalUnitNotFoundException", "ParentNotFoundException"):
                unit = params.get("OrganizationalUnitId") or params.get("ParentId")
                self._fail("organizations_ou_id", "AWS Organizations has no organizational unit or root {0} "
                                                  "({1}: {2}).".format(unit, code, message))
            hint = {
                "AWSOrganizationsNotInUseException": " The account of these credentials is in no organization.",
                "AccessDeniedException": " AWS Organizations answers only the management account and its delegated "
                                         "administrators, with organizations:{0} allowed.".format(
                                             operation.title().replace("_", "")),
            }.get(code, "")
            raise AnsibleError("{0}: AWS Organizations {1} failed: {2}: {3}{4}".format(
                self.NAME, operation, code, message, hint)) from error
        except (botocore.exceptions.BotoCoreError, AnsibleBotocoreError) as error:
            raise AnsibleError("{0}: AWS Organizations {1} failed: {2}".format(
                self.NAME, operation, to_native(error))) from error

    def _pages(self, client, operation, result_key, **params):
        """Every item of a paginated Organizations list: pages until NextToken is null, empty pages included
        (https://docs.aws.amazon.com/organizations/latest/APIReference/API_ListAccounts.html: "These operations
        can occasionally return an empty set of results even when more results are available")."""
        items = []
        tokens = set()
        while True:
            page = self._call(client, operation, MaxResults=PAGE_SIZE, **params)
            items.extend(page.get(result_key) or [])
            token = page.get("NextToken")
            if not token:
                return items
            if token in tokens:
                raise AnsibleError("{0}: AWS Organizations {1} returned the same NextToken twice.".format(
                    self.NAME, operation))
            tokens.add(token)
            params["NextToken"] = token

    def _top(self, client, parent_id):
        """{id, name} of the OU or root organizations_ou_id names; an unknown id is bad input."""
        if parent_id.startswith("r-"):
            roots = self._pages(client, "list_roots", "Roots")
            for root in roots:
                if root.get("Id") == parent_id:
                    return {"id": parent_id, "name": root.get("Name") or parent_id}
            self._fail("organizations_ou_id", "{0} is not the root of this organization (its root is {1}).".format(
                parent_id, ", ".join(root.get("Id", "?") for root in roots) or "unknown"))
        unit = self._call(client, "describe_organizational_unit", OrganizationalUnitId=parent_id)
        return {"id": parent_id, "name": unit["OrganizationalUnit"].get("Name") or parent_id}

    def _query_organizations(self, region, query):
        """The accounts AWS Organizations lists, active or not: [{id, name, path, active, state}], ``path``
        the OUs from organizations_ou_id down to the account's own ([{id, name}], empty without an OU id)."""
        client = self._organizations(region)
        found = []

        def add(account, path):
            found.append({
                "id": account["Id"],
                "name": account.get("Name"),
                "path": path,
                "active": is_active(account),
                "state": account.get("State") or account.get("Status"),
            })

        if query["ou_id"] is None:
            for account in self._pages(client, "list_accounts", "Accounts"):
                add(account, [])
            return found
        pending = [[self._top(client, query["ou_id"])]]
        while pending:
            path = pending.pop(0)
            parent_id = path[-1]["id"]
            for account in self._pages(client, "list_accounts_for_parent", "Accounts", ParentId=parent_id):
                add(account, path)
            if query["recursive"]:
                children = self._pages(client, "list_organizational_units_for_parent", "OrganizationalUnits",
                                       ParentId=parent_id)
                for child in sorted(children, key=lambda unit: (unit.get("Name") or "", unit["Id"])):
                    pending.append(path + [{"id": child["Id"], "name": child.get("Name") or child["Id"]}])
        return found

    def _organization_accounts(self, path, cache, settings):
        """The Organizations listing, from the cache when it holds one for the same query."""
        use_cache = bool(self.get_option("cache"))
        key = self.get_cache_key(path) if use_cache else None
        if use_cache and cache:
            try:
                entry = self._cache[key]
            except KeyError:
                entry = None
            if isinstance(entry, dict) and entry.get("query") == settings["query"] \
                    and isinstance(entry.get("accounts"), list):
                return entry["accounts"]
        accounts = self._query_organizations(settings["regions"][0], settings["query"])
        if use_cache:
            self._cache[key] = {"query": settings["query"], "accounts": accounts}
        return accounts

    # ---- the hosts -------------------------------------------------------------------
    def _accounts(self, path, cache, settings):
        """Static entries and Organizations' active accounts merged: [{id, name, path, role_arn, external_id}],
        the static ones first in their order, then the others by name and id."""
        static = [dict(entry, path=[{"id": None, "name": entry["ou"]}] if entry["ou"] else [])
                  for entry in settings["static"]]
        if not settings["organizations"]:
            return static
        listed = dict((account["id"], account) for account in self._organization_accounts(path, cache, settings))
        merged = []
        for entry in static:
            account = listed.pop(entry["id"], None)
            if account is not None and not account["active"]:
                self.display.warning("{0}: account {1} of accounts is {2} in AWS Organizations: it is left out."
                                     .format(self.NAME, entry["id"], account["state"]))
                continue
            if account is not None:
                entry["name"] = entry["name"] or account["name"]
                entry["path"] = entry["path"] or account["path"]
            merged.append(entry)
        rest = [account for account in listed.values() if account["active"]]
        for account in sorted(rest, key=lambda account: ((account["name"] or "").lower(), account["id"])):
            merged.append({"id": account["id"], "name": account["name"], "path": account["path"],
                           "role_arn": None, "external_id": None})
        return merged

    def _host_vars(self, account, region, settings):
        partition = settings["partition"]
        role_arn = account["role_arn"] or "arn:{0}:iam::{1}:role{2}{3}".format(
            partition, account["id"], settings["role_path"], settings["role_name"])
        own = account["path"][-1] if account["path"] else {"id": None, "name": None}
        return {
            "ansible_connection": "local",
            "keyless_account_id": account["id"],
            "keyless_account_name": account["name"],
            "keyless_region": region,
            "keyless_partition": partition,
            "keyless_role_arn": role_arn,
            "keyless_external_id": account["external_id"] or settings["external_id"],
            "keyless_ou": own["name"],
            "keyless_ou_id": own["id"],
            "keyless_ou_path": [unit["name"] for unit in account["path"]],
        }

    def _render_hostname(self, template, host_vars):
        self.templar.available_variables = host_vars
        text = trust_as_template(template) if trust_as_template is not None else template
        try:
            return to_native(self.templar.template(text))
        except Exception as error:  # pylint: disable=broad-except
            self._fail("hostname_template", "could not render {0!r} for account {1} in {2}: {3}".format(
                template, host_vars["keyless_account_id"], host_vars["keyless_region"], to_native(error)))

    def _hosts(self, accounts, settings):
        """[(host name, host vars, groups)] for every account and region."""
        template = settings["hostname_template"]
        names = {}
        for account in accounts:
            base = host_name(account["name"]) if account["name"] else ""
            names.setdefault(base or account["id"], []).append(account["id"])
        shared = dict((name, ids) for name, ids in names.items() if len(ids) > 1)
        for name, ids in sorted(shared.items()):
            self.display.warning("{0}: the accounts {1} share the name {2!r}: their hosts are named "
                                 "<name>-<account id>-<region>.".format(self.NAME, ", ".join(ids), name))
        hosts = []
        taken = {}
        for account in accounts:
            base = (host_name(account["name"]) if account["name"] else "") or account["id"]
            if base in shared:
                base = "{0}-{1}".format(base, account["id"])
            for region in settings["regions"]:
                host_vars = self._host_vars(account, region, settings)
                if template is None:
                    name = "{0}-{1}".format(base, region)
                else:
                    name = host_name(self._render_hostname(template, host_vars))
                    if not name:
                        self._fail("hostname_template", "{0!r} renders an empty host name for account {1} in "
                                                        "{2}.".format(template, account["id"], region))
                if name in taken:
                    self._fail("hostname_template", "account {0} in {1} and account {2} in {3} both get the host "
                                                    "name {4!r}; make the template tell them apart (with "
                                                    "keyless_account_id and keyless_region).".format(
                                                        taken[name][0], taken[name][1], account["id"], region, name))
                taken[name] = (account["id"], region)
                hosts.append((name, host_vars, self._groups(account, region)))
        return hosts

    @staticmethod
    def _groups(account, region):
        """keyless_accounts (every host: the group playbooks/*.yml run on), account_<id>, region_<region>, and
        ou_<name> for the account's OU and each one above it (by id when the name leaves nothing)."""
        groups = [ALL_GROUP, group_name("account", account["id"]), group_name("region", region)]
        for unit in account["path"]:
            groups.append(group_name("ou", unit["name"]) or (group_name("ou", unit["id"]) if unit["id"] else None))
        return [group for group in groups if group]

    def _populate(self, hosts):
        strict = self.get_option("strict")
        for name, host_vars, groups in hosts:
            self.inventory.add_host(name)
            for key, value in host_vars.items():
                # Data, never templates: names come from AWS Organizations. ansible-core 2.19 renders only
                # the strings of the inventory file; before it, every string unless it is marked unsafe.
                self.inventory.set_variable(name, key, value if wrap_var is None else wrap_var(value))
            for group in groups:
                self.inventory.add_group(group)
                self.inventory.add_child(group, name)
            self._set_composite_vars(self.get_option("compose"), host_vars, name, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), host_vars, name, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), host_vars, name, strict=strict)

    def parse(self, inventory, loader, path, cache=True):
        self._organizations_client = None
        self._frozen_credentials = {}
        super(InventoryModule, self).parse(inventory, loader, path, cache=cache)
        settings = self._settings()
        accounts = self._accounts(path, cache, settings)
        self._populate(self._hosts(accounts, settings))
