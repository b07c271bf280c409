"""keyless.aws.accounts through ansible-inventory (and ansible-playbook), as AWX runs an inventory
source: a subprocess with the sandbox's environment (AWS_URL, dummy credentials) and this
checkout's ansible.cfg.

The organization is made in the sandbox with the Organizations API (CreateOrganization,
CreateAccount, CreateOrganizationalUnit, MoveAccount, CloseAccount); the request log says which
calls the inventory made."""

import ast
import json
import os
import subprocess

import pytest
import yaml

from runner import BIN, ROOT
from runner import plain
from runner import run_playbook

INVENTORIES = os.path.join(ROOT, "tests", "integration", "inventory")
PLUGIN = os.path.join(ROOT, "plugins", "inventory", "accounts.py")
MANAGEMENT_ACCOUNT = "123456789012"  # the sandbox's credentials are moto's default account


def environment(sandbox, extra=None):
    env = dict(os.environ)
    env.update(sandbox.env())
    env.update(
        ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_LOCAL_TEMP=os.path.join(ROOT, ".build", "ansible-tmp"),
        ANSIBLE_HOME=os.path.join(ROOT, ".build", "ansible-home"),
        # A source that fails to parse fails the command, instead of a warning and an empty inventory.
        ANSIBLE_INVENTORY_UNPARSED_FAILED="1",
        ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED="1",
    )
    env.update(extra or {})
    return env


class Listing:
    """ansible-inventory --list, read: ``hostvars``, ``groups`` (name -> direct hosts)."""

    def __init__(self, data):
        self.hostvars = plain(data.get("_meta", {}).get("hostvars", {}))
        self.groups = dict((name, sorted(group.get("hosts", []))) for name, group in data.items()
                           if name not in ("_meta", "all") and group.get("hosts"))

    @property
    def hosts(self):
        return sorted(self.hostvars)

    def names(self):
        return sorted(set(host["keyless_account_name"] for host in self.hostvars.values()))


def inventory(sandbox, path, *args, fails=False):
    """ansible-inventory -i path --list: a Listing, or with ``fails`` the output of the failed run."""
    command = [os.path.join(BIN, "ansible-inventory"), "-i", str(path), "--list"] + list(args)
    done = subprocess.run(command, env=environment(sandbox), cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=300, check=False)
    output = done.stdout.decode("utf-8", "replace")
    errors = done.stderr.decode("utf-8", "replace")
    if fails:
        assert done.returncode != 0, output
        return errors
    assert done.returncode == 0, errors
    return Listing(json.loads(output))


class Organization:
    """An organization in the sandbox, made through the Organizations API."""

    def __init__(self, sandbox):
        self.client = sandbox.client("organizations")
        self.client.create_organization(FeatureSet="ALL")
        self.root = self.client.list_roots()["Roots"][0]["Id"]

    def unit(self, name, parent=None):
        return self.client.create_organizational_unit(ParentId=parent or self.root, Name=name)[
            "OrganizationalUnit"]["Id"]

    def account(self, name, parent=None):
        account_id = self.client.create_account(AccountName=name, Email=name + "@example.com")[
            "CreateAccountStatus"]["AccountId"]
        if parent:
            self.client.move_account(AccountId=account_id, SourceParentId=self.root, DestinationParentId=parent)
        return account_id

    def close(self, account_id):
        self.client.close_account(AccountId=account_id)
        assert self.client.describe_account(AccountId=account_id)["Account"]["Status"] == "SUSPENDED"


@pytest.fixture
def org(sandbox):
    """Workloads (web) > Prod (pay, shop, retired: closed) > Payments (ledger); Workloads > Staging
    (stage); Sandbox (play); the management account under the root."""
    organization = Organization(sandbox)
    units = organization.units = {}
    units["workloads"] = organization.unit("Workloads")
    units["prod"] = organization.unit("Prod", units["workloads"])
    units["payments"] = organization.unit("Payments", units["prod"])
    units["staging"] = organization.unit("Staging", units["workloads"])
    units["sandbox"] = organization.unit("Sandbox")
    accounts = organization.accounts = {}
    for name, unit in (("web", "workloads"), ("pay", "prod"), ("shop", "prod"), ("retired", "prod"),
                       ("ledger", "payments"), ("stage", "staging"), ("play", "sandbox")):
        accounts[name] = organization.account(name, units[unit])
    organization.close(accounts["retired"])
    sandbox.app.clear_log()
    return organization


def organizations_calls(sandbox):
    return [(call["action"], call["params"]) for call in sandbox.calls(service="organizations")]


def write(tmp_path, name, config):
    path = tmp_path / (name + ".keyless_accounts.yml")
    path.write_text(yaml.safe_dump(dict({"plugin": "keyless.aws.accounts"}, **config)))
    return path


def test_the_static_example_file_lists_its_hosts_without_any_aws_call(sandbox):
    listing = inventory(sandbox, os.path.join(INVENTORIES, "static.keyless_accounts.yml"))
    assert listing.hosts == ["777788889999-eu-west-1", "777788889999-us-east-1", "payments-eu-west-1",
                             "payments-us-east-1", "shop-eu-west-1", "shop-us-east-1"]
    assert listing.hostvars["shop-eu-west-1"] == {
        "ansible_connection": "local",
        "keyless_account_id": "444455556666",
        "keyless_account_name": "shop",
        "keyless_region": "eu-west-1",
        "keyless_partition": "aws",
        "keyless_role_arn": "arn:aws:iam::444455556666:role/automation/keyless-deployer",
        "keyless_external_id": "shop-2f1c",
        "keyless_ou": "prod",
        "keyless_ou_id": None,
        "keyless_ou_path": ["prod"],
    }
    assert listing.hostvars["payments-us-east-1"]["keyless_role_arn"] == \
        "arn:aws:iam::111122223333:role/keyless-automation"
    assert listing.groups["ou_prod"] == ["payments-eu-west-1", "payments-us-east-1", "shop-eu-west-1",
                                         "shop-us-east-1"]
    assert listing.groups["ou_sandbox"] == ["777788889999-eu-west-1", "777788889999-us-east-1"]
    assert listing.groups["region_us_east_1"] == ["777788889999-us-east-1", "payments-us-east-1", "shop-us-east-1"]
    assert listing.groups["account_111122223333"] == ["payments-eu-west-1", "payments-us-east-1"]
    assert listing.groups["partition_aws"] == listing.hosts
    assert listing.groups["keyless_accounts"] == listing.hosts
    assert sandbox.calls() == []


def test_the_organizations_example_file_lists_every_active_account_in_each_region(sandbox, org):
    listing = inventory(sandbox, os.path.join(INVENTORIES, "organizations.keyless_accounts.yml"))
    assert listing.names() == ["ledger", "master", "pay", "play", "shop", "stage", "web"]
    assert len(listing.hosts) == 14
    assert "retired-eu-west-1" not in listing.hosts
    ledger = listing.hostvars["ledger-eu-central-1"]
    assert ledger["keyless_account_id"] == org.accounts["ledger"]
    assert ledger["keyless_role_arn"] == "arn:aws:iam::{0}:role/OrganizationAccountAccessRole".format(
        org.accounts["ledger"])
    assert ledger["ansible_connection"] == "local"
    assert [action for action, params in organizations_calls(sandbox)] == ["ListAccounts"]


def test_every_page_of_a_large_organization_is_read(sandbox):
    organization = Organization(sandbox)
    created = set(organization.account("team-%02d" % number) for number in range(41))
    organization.close(sorted(created)[0])
    sandbox.app.clear_log()
    listing = inventory(sandbox, os.path.join(INVENTORIES, "organizations.keyless_accounts.yml"))
    listed = set(host["keyless_account_id"] for host in listing.hostvars.values())
    assert listed == (created - {sorted(created)[0]}) | {MANAGEMENT_ACCOUNT}
    assert len(listing.hosts) == 41 * 2
    assert [action for action, params in organizations_calls(sandbox)] == ["ListAccounts"] * 3


def test_organizations_ou_id_lists_the_accounts_directly_under_it(sandbox, org, tmp_path):
    path = write(tmp_path, "prod", {"organizations": True, "organizations_ou_id": org.units["prod"],
                                    "regions": ["eu-west-1"]})
    listing = inventory(sandbox, path)
    assert listing.names() == ["pay", "shop"]
    assert listing.groups["ou_prod"] == ["pay-eu-west-1", "shop-eu-west-1"]
    assert [name for name in listing.groups if name.startswith("ou_")] == ["ou_prod"]
    assert listing.hostvars["pay-eu-west-1"]["keyless_ou_id"] == org.units["prod"]
    assert [action for action, params in organizations_calls(sandbox)] == [
        "DescribeOrganizationalUnit", "ListAccountsForParent"]


def test_organizations_ou_recursive_takes_every_ou_below_and_makes_a_group_of_each(sandbox, org, tmp_path):
    path = write(tmp_path, "workloads", {"organizations": True, "organizations_ou_id": org.units["workloads"],
                                         "organizations_ou_recursive": True, "regions": ["eu-west-1"]})
    listing = inventory(sandbox, path)
    assert listing.names() == ["ledger", "pay", "shop", "stage", "web"]
    assert listing.groups["ou_workloads"] == ["ledger-eu-west-1", "pay-eu-west-1", "shop-eu-west-1",
                                              "stage-eu-west-1", "web-eu-west-1"]
    assert listing.groups["ou_prod"] == ["ledger-eu-west-1", "pay-eu-west-1", "shop-eu-west-1"]
    assert listing.groups["ou_payments"] == ["ledger-eu-west-1"]
    assert listing.groups["ou_staging"] == ["stage-eu-west-1"]
    assert "ou_sandbox" not in listing.groups
    assert listing.hostvars["ledger-eu-west-1"]["keyless_ou_path"] == ["Workloads", "Prod", "Payments"]


def test_an_unknown_ou_fails_the_inventory_naming_organizations_ou_id(sandbox, org, tmp_path):
    path = write(tmp_path, "gone", {"organizations": True, "organizations_ou_id": "ou-zzzz-zzzzzzzz",
                                    "regions": ["eu-west-1"]})
    errors = inventory(sandbox, path, fails=True)
    assert "keyless.aws.accounts: organizations_ou_id: AWS Organizations has no organizational unit or root " \
           "ou-zzzz-zzzzzzzz (OrganizationalUnitNotFoundException" in " ".join(errors.split())


def test_a_malformed_account_id_fails_the_inventory_naming_it(sandbox, tmp_path):
    path = write(tmp_path, "bad", {"regions": ["eu-west-1"], "accounts": [{"id": "12345"}]})
    errors = inventory(sandbox, path, fails=True)
    assert "keyless.aws.accounts: accounts[0].id: '12345' is not an AWS account id" in " ".join(errors.split())


def test_a_play_assumes_the_role_of_each_account_the_inventory_lists(sandbox, org, tmp_path):
    """The hosts are API targets: a play on ou_prod assumes each account's role (keyless_role_arn)
    in its region and finds itself in that account."""
    path = write(tmp_path, "prod", {"organizations": True, "organizations_ou_id": org.units["workloads"],
                                    "organizations_ou_recursive": True, "regions": ["eu-west-1"]})
    results = tmp_path / "results"
    results.mkdir()
    playbook = tmp_path / "assume.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Assume the role of every production account",
        "hosts": "ou_prod",
        "gather_facts": False,
        "tasks": [
            {"name": "Assume the account's role", "amazon.aws.sts_assume_role": {
                "role_arn": "{{ keyless_role_arn }}", "role_session_name": "keyless-inventory",
                "region": "{{ keyless_region }}"}, "register": "assumed"},
            {"name": "Ask who we are there", "amazon.aws.aws_caller_info": {
                "access_key": "{{ assumed.sts_creds.access_key }}",
                "secret_key": "{{ assumed.sts_creds.secret_key }}",
                "session_token": "{{ assumed.sts_creds.session_token }}",
                "region": "{{ keyless_region }}"}, "register": "caller"},
            {"name": "Keep the answer", "ansible.builtin.copy": {
                "content": "{{ {'account': caller.account, 'expected': keyless_account_id} | to_json }}",
                "dest": str(results) + "/{{ inventory_hostname }}.json", "mode": "0600"}},
        ],
    }], sort_keys=False))
    command = [os.path.join(BIN, "ansible-playbook"), "-i", str(path), str(playbook),
               "-e", "ansible_python_interpreter=" + os.path.join(BIN, "python")]
    done = subprocess.run(command, env=environment(sandbox), cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=600, check=False)
    output = done.stdout.decode("utf-8", "replace")
    assert done.returncode == 0, output[-4000:]
    answers = dict((name[:-5], json.loads((results / name).read_text())) for name in os.listdir(str(results)))
    assert sorted(answers) == ["ledger-eu-west-1", "pay-eu-west-1", "shop-eu-west-1"]
    for answer in answers.values():
        assert answer["account"] == answer["expected"]
    assumed = sorted(call["params"].get("RoleArn") for call in sandbox.calls(service="sts", action="AssumeRole"))
    assert assumed == sorted("arn:aws:iam::{0}:role/OrganizationAccountAccessRole".format(org.accounts[name])
                             for name in ("ledger", "pay", "shop"))


def test_audit_yml_runs_once_per_host_of_the_inventory_in_each_account(sandbox, org, tmp_path):
    """playbooks/audit.yml on the keyless_accounts group of this inventory: each host audits its account and
    region with the credentials of its keyless_role_arn, and the one report names every host; the closed
    account (retired, under Prod) is no host, so nothing fails."""
    path = write(tmp_path, "prod", {"organizations": True, "organizations_ou_id": org.units["prod"],
                                    "regions": ["us-east-1"]})
    report_dir = tmp_path / "report"
    audit = run_playbook(sandbox, os.path.join(ROOT, "playbooks", "audit.yml"), "-i", str(path), "-f", "4",
                         "-e", "audit_report_dir={0}".format(report_dir), "-e", "audit_imdsv1_usage_window=0",
                         name="accounts-inventory-audit")
    assert audit.returncode == 0, audit.output[-4000:]
    report = json.loads((report_dir / "keyless-audit.json").read_text())
    expected = {"pay-us-east-1": (org.accounts["pay"], "us-east-1"),
                "shop-us-east-1": (org.accounts["shop"], "us-east-1")}
    assert sorted(target["target"] for target in report["targets"]) == sorted(expected)
    for target in report["targets"]:
        assert (target["account_id"], target["region"]) == expected[target["target"]]
    assert report["failed_targets"] == []


def examples():
    """The YAML documents of the plugin's EXAMPLES (read with ast, not imported)."""
    with open(PLUGIN) as handle:
        tree = ast.parse(handle.read())
    text = next(node.value.value for node in tree.body if isinstance(node, ast.Assign)
                and getattr(node.targets[0], "id", None) == "EXAMPLES")
    return [document for document in yaml.safe_load_all(text) if document]


def test_every_example_of_the_plugin_documentation_is_an_inventory_that_parses(sandbox, org, tmp_path):
    """Each EXAMPLES document, written to a file as it is, lists hosts. Substituted: the made-up OU id
    (the sandbox's Workloads), the made-up management account of assume_role_arn (the sandbox's), and
    the cache folder (a temporary one)."""
    sandbox.client("iam").create_role(RoleName="read-organization", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"AWS": "arn:aws:iam::{0}:root".format(
                                                    MANAGEMENT_ACCOUNT)}}]}))
    documents = examples()
    assert len(documents) == 4
    substitutions = {"ou-ab12-cdef5678": org.units["workloads"], "999988887777": MANAGEMENT_ACCOUNT,
                     "/tmp/keyless-accounts-cache": str(tmp_path / "cache")}
    listings = []
    for number, document in enumerate(documents):
        text = yaml.safe_dump(document)
        for made_up, real in substitutions.items():
            text = text.replace(made_up, real)
        path = tmp_path / "example-{0}.keyless_accounts.yml".format(number)
        path.write_text(text)
        listings.append(inventory(sandbox, path))
    assert listings[0].hosts == ["payments-eu-west-1", "payments-us-east-1", "shop-eu-west-1", "shop-us-east-1"]
    assert listings[1].hostvars["web-eu-central-1"]["keyless_role_arn"] == \
        "arn:aws:iam::{0}:role/platform/keyless-automation".format(org.accounts["web"])
    assert os.listdir(str(tmp_path / "cache"))
    assert "{0}-eu-central-1".format(org.accounts["ledger"]) in listings[2].groups["ou_payments"]
    assert listings[2].groups["partition_aws"] == listings[2].hosts
    assert listings[3].hostvars["gov-data-us-gov-west-1"]["keyless_role_arn"] == \
        "arn:aws-us-gov:iam::123456789012:role/OrganizationAccountAccessRole"
