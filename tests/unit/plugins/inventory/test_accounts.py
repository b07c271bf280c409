"""keyless.aws.accounts, the inventory of accounts times regions, parsed in this process as
ansible-inventory parses it (the plugin loader, a YAML file, InventoryData).

A static list needs no AWS call, and these tests make sure none is made (the plugin's client() fails
the test). AWS Organizations is moto's, in process (moto.mock_aws); tests/integration/
test_accounts_inventory.py runs ansible-inventory against the sandbox."""

import os
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
COLLECTIONS = os.environ.get("KEYLESS_COLLECTIONS") or os.path.join(ROOT, ".build", "collections")
MANAGEMENT_ACCOUNT = "123456789012"  # moto's default account: the caller, so the management account
MAGIC_VARIABLES = ("inventory_file", "inventory_dir", "inventory_hostname", "inventory_hostname_short", "group_names")


def _collection_modules():
    return [name for name in sys.modules if name == "ansible_collections" or name.startswith("ansible_collections.")]


@pytest.fixture(scope="module")
def inventory_loader():
    """ansible's inventory plugin loader with the collection loader installed, as in ansible-inventory.

    The collection loader must import the collections itself (it records their meta/runtime.yml), and other
    test files have imported ansible_collections.* through sys.path already: their modules are set aside while
    this file runs, and put back after, so their tests keep the module objects they imported."""
    from ansible.plugins.loader import init_plugin_loader
    from ansible.plugins.loader import inventory_loader as loader
    from ansible.utils.collection_loader import AnsibleCollectionConfig
    from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

    installed_here = AnsibleCollectionConfig.collection_finder is None
    saved = {}
    if installed_here:
        saved = dict((name, sys.modules.pop(name)) for name in _collection_modules())
        init_plugin_loader([COLLECTIONS])
    yield loader
    if installed_here:
        for name in _collection_modules():
            del sys.modules[name]
        sys.modules.update(saved)
        _AnsibleCollectionFinder._remove()  # pylint: disable=protected-access


class Recorder:
    """Stands in for the plugin's Display: keeps the warnings."""

    def __init__(self, display):
        self.display = display
        self.warnings = []

    def warning(self, message, *args, **kwargs):
        self.warnings.append(message)

    def __getattr__(self, name):
        return getattr(self.display, name)


class Parsed:
    def __init__(self, plugin, inventory, warnings, calls):
        self.plugin = plugin
        self.inventory = inventory
        self.warnings = warnings
        self.calls = calls

    @property
    def hosts(self):
        return sorted(self.inventory.hosts)

    def vars(self, host):
        """The variables the plugin gave the host (not the magic ones Host.get_vars() adds)."""
        found = dict(self.inventory.get_host(host).get_vars())
        for name in MAGIC_VARIABLES:
            found.pop(name, None)
        return found

    def members(self, group):
        return sorted(host.name for host in self.inventory.groups[group].get_hosts())

    @property
    def groups(self):
        return sorted(name for name in self.inventory.groups if name not in ("all", "ungrouped"))


@pytest.fixture
def parse(inventory_loader, tmp_path, monkeypatch):
    """``parse(config, aws=False, name=..., cache=True, errors=None)`` writes ``config`` as an inventory file
    and parses it with a new plugin instance. Without ``aws``, any AWS client the plugin asks for fails the
    test; with it, the Organizations calls made are in ``calls``, and ``errors`` ({operation: (status, code,
    message[, times])}) answers those operations with that AWS error instead of moto."""
    from ansible.inventory.data import InventoryData
    from ansible.parsing.dataloader import DataLoader

    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_URL", "AWS_ENDPOINT_URL", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)

    def run(config, aws=False, name="test.keyless_accounts.yml", cache=True, errors=None):
        path = tmp_path / name
        path.write_text(yaml.safe_dump(dict({"plugin": "keyless.aws.accounts"}, **config)))
        plugin = inventory_loader.get("keyless.aws.accounts")
        recorder = Recorder(plugin.display)
        plugin.display = recorder
        calls = []
        real_client = plugin.client

        def client(service, **kwargs):
            if not aws:
                pytest.fail("the inventory asked for an AWS {0} client".format(service))
            wrapper = real_client(service, **kwargs)
            wrapper.client.meta.events.register(
                "before-parameter-build.{0}".format(service),
                lambda model, params, **rest: calls.append((model.name, dict(params))))
            for operation, error in (errors or {}).items():
                wrapper.client.meta.events.register("before-call.{0}.{1}".format(service, operation),
                                                    aws_error(*error))
            return wrapper

        plugin.client = client
        inventory = InventoryData()
        assert plugin.verify_file(str(path))
        plugin.parse(inventory, DataLoader(), str(path), cache=cache)
        if getattr(plugin, "_cache", None) is not None:
            plugin.update_cache_if_changed()
        return Parsed(plugin, inventory, recorder.warnings, calls)

    return run


def aws_error(status, code, message, times=None):
    """A before-call handler that answers as AWS answers an error (botocore raises ClientError from it), the
    first ``times`` calls (every call when None); after those, moto answers."""
    from botocore.awsrequest import AWSResponse

    answered = []

    def answer(**kwargs):
        if times is not None and len(answered) >= times:
            return None
        answered.append(1)
        parsed = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
        return AWSResponse("https://organizations.us-east-1.amazonaws.com/", status, {}, None), parsed

    return answer


def parse_error(parse, config, **kwargs):
    from ansible.errors import AnsibleParserError

    with pytest.raises(AnsibleParserError) as raised:
        parse(config, **kwargs)
    return str(raised.value)


TWO_ACCOUNTS = {
    "regions": ["eu-west-1", "us-east-1"],
    "accounts": [
        {"id": "111122223333", "name": "payments", "ou": "prod"},
        {"id": "444455556666", "role_arn": "arn:aws:iam::444455556666:role/automation/deployer",
         "external_id": "shop-2f1c"},
    ],
}


# ---- the file ------------------------------------------------------------------------------------------------

def test_the_plugin_takes_files_named_keyless_accounts_yml_or_yaml_only(inventory_loader, tmp_path):
    plugin = inventory_loader.get("keyless.aws.accounts")
    for name in ("prod.keyless_accounts.yml", "keyless_accounts.yaml", "aws_ec2.yml", "prod.keyless_accounts.json",
                 "accounts.yml"):
        (tmp_path / name).write_text("plugin: keyless.aws.accounts\n")
    assert plugin.verify_file(str(tmp_path / "prod.keyless_accounts.yml"))
    assert plugin.verify_file(str(tmp_path / "keyless_accounts.yaml"))
    assert not plugin.verify_file(str(tmp_path / "aws_ec2.yml"))
    assert not plugin.verify_file(str(tmp_path / "prod.keyless_accounts.json"))
    assert not plugin.verify_file(str(tmp_path / "accounts.yml"))
    assert not plugin.verify_file(str(tmp_path / "missing.keyless_accounts.yml"))


# ---- the static list -----------------------------------------------------------------------------------------

def test_a_static_list_makes_one_host_per_account_and_region_with_its_variables_and_no_aws_call(parse):
    parsed = parse(TWO_ACCOUNTS)
    assert parsed.hosts == ["444455556666-eu-west-1", "444455556666-us-east-1", "payments-eu-west-1",
                            "payments-us-east-1"]
    assert parsed.vars("payments-eu-west-1") == {
        "ansible_connection": "local",
        "keyless_account_id": "111122223333",
        "keyless_account_name": "payments",
        "keyless_region": "eu-west-1",
        "keyless_partition": "aws",
        "keyless_role_arn": "arn:aws:iam::111122223333:role/OrganizationAccountAccessRole",
        "keyless_external_id": None,
        "keyless_ou": "prod",
        "keyless_ou_id": None,
        "keyless_ou_path": ["prod"],
    }
    own = parsed.vars("444455556666-us-east-1")
    assert own["keyless_role_arn"] == "arn:aws:iam::444455556666:role/automation/deployer"
    assert own["keyless_external_id"] == "shop-2f1c"
    assert own["keyless_account_name"] is None
    assert own["keyless_ou"] is None and own["keyless_ou_path"] == []
    assert parsed.calls == []


def test_each_host_is_in_keyless_accounts_and_its_account_region_and_ou_groups(parse):
    parsed = parse(TWO_ACCOUNTS)
    assert parsed.groups == ["account_111122223333", "account_444455556666", "keyless_accounts", "ou_prod",
                             "region_eu_west_1", "region_us_east_1"]
    assert parsed.members("keyless_accounts") == parsed.hosts
    assert parsed.members("account_111122223333") == ["payments-eu-west-1", "payments-us-east-1"]
    assert parsed.members("region_eu_west_1") == ["444455556666-eu-west-1", "payments-eu-west-1"]
    assert parsed.members("ou_prod") == ["payments-eu-west-1", "payments-us-east-1"]


def test_the_role_arn_is_built_from_role_name_and_role_path_unless_the_account_gives_its_own(parse):
    config = dict(TWO_ACCOUNTS, role_name="keyless-automation", role_path="/platform/", external_id="all-7d3e")
    parsed = parse(config)
    assert parsed.vars("payments-us-east-1")["keyless_role_arn"] == \
        "arn:aws:iam::111122223333:role/platform/keyless-automation"
    assert parsed.vars("payments-us-east-1")["keyless_external_id"] == "all-7d3e"
    assert parsed.vars("444455556666-us-east-1")["keyless_role_arn"] == \
        "arn:aws:iam::444455556666:role/automation/deployer"
    assert parsed.vars("444455556666-us-east-1")["keyless_external_id"] == "shop-2f1c"


def test_every_account_is_a_host_in_every_region_once(parse):
    accounts = [{"id": "%012d" % (100000000000 + n), "name": "team-%d" % n} for n in range(3)]
    parsed = parse({"regions": ["eu-west-1", "ap-southeast-2", "eu-west-1", "sa-east-1"], "accounts": accounts})
    assert len(parsed.hosts) == 9
    assert parsed.hosts[:3] == ["team-0-ap-southeast-2", "team-0-eu-west-1", "team-0-sa-east-1"]
    for group in ("region_eu_west_1", "region_ap_southeast_2", "region_sa_east_1"):
        assert len(parsed.members(group)) == 3


@pytest.mark.parametrize("region, partition", [
    ("cn-north-1", "aws-cn"), ("cn-northwest-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov"),
    ("us-gov-east-1", "aws-us-gov"), ("us-iso-east-1", "aws-iso"), ("us-isob-east-1", "aws-iso-b"),
    ("eu-isoe-west-1", "aws-iso-e"), ("us-isof-south-1", "aws-iso-f"), ("il-central-1", "aws"),
])
def test_the_partition_follows_the_region_into_the_role_arn(parse, region, partition):
    parsed = parse({"regions": [region], "accounts": [{"id": "123456789012", "name": "data"}]})
    host = parsed.vars("data-" + region)
    assert host["keyless_partition"] == partition
    assert host["keyless_role_arn"] == "arn:{0}:iam::123456789012:role/OrganizationAccountAccessRole".format(partition)


def test_the_partitions_agree_with_the_collections_own_partition_for_region(inventory_loader):
    inventory_loader.get("keyless.aws.accounts")
    accounts = sys.modules["ansible_collections.keyless.aws.plugins.inventory.accounts"]
    common = sys.modules.get("ansible_collections.keyless.aws.plugins.module_utils.common")
    if common is None:
        from ansible_collections.keyless.aws.plugins.module_utils import common
    for region in ("us-east-1", "eu-central-2", "cn-north-1", "us-gov-west-1", "us-iso-east-1", "us-isob-east-1",
                   "eu-isoe-west-1", "us-isof-east-1", "me-central-1", "mx-central-1"):
        assert accounts.partition_of(region) == common.partition_for_region(region), region


def test_an_unquoted_account_id_that_yaml_read_as_a_number_is_taken_when_it_has_12_digits(parse):
    parsed = parse({"regions": ["eu-west-1"], "accounts": [{"id": 123456789012}]})
    assert parsed.hosts == ["123456789012-eu-west-1"]
    assert parsed.vars("123456789012-eu-west-1")["keyless_account_id"] == "123456789012"


# ---- host names ------------------------------------------------------------------------------------------------

def test_host_names_are_the_account_name_or_id_and_the_region_lowercased_and_sanitized(parse):
    parsed = parse({"regions": ["eu-west-1"], "accounts": [
        {"id": "111122223333", "name": "Payments Prod (EU)!"},
        {"id": "444455556666", "name": "***"},
        {"id": "777788889999"},
    ]})
    assert parsed.hosts == ["444455556666-eu-west-1", "777788889999-eu-west-1", "payments-prod-eu-eu-west-1"]


def test_accounts_that_share_a_name_get_their_id_in_the_host_name_and_a_warning(parse):
    parsed = parse({"regions": ["eu-west-1"], "accounts": [
        {"id": "111122223333", "name": "sandbox"},
        {"id": "444455556666", "name": "Sandbox"},
        {"id": "777788889999", "name": "prod"},
    ]})
    assert parsed.hosts == ["prod-eu-west-1", "sandbox-111122223333-eu-west-1", "sandbox-444455556666-eu-west-1"]
    assert len(parsed.warnings) == 1
    assert "111122223333, 444455556666 share the name 'sandbox'" in parsed.warnings[0]


def test_hostname_template_renders_the_host_variables(parse):
    parsed = parse(dict(TWO_ACCOUNTS, hostname_template="{{ keyless_region }}.{{ keyless_account_id }}"))
    assert parsed.hosts == ["eu-west-1.111122223333", "eu-west-1.444455556666", "us-east-1.111122223333",
                            "us-east-1.444455556666"]


def test_a_hostname_template_that_names_two_hosts_alike_fails_naming_it(parse):
    message = parse_error(parse, dict(TWO_ACCOUNTS, hostname_template="{{ keyless_account_id }}"))
    assert "hostname_template" in message
    assert "account 111122223333 in eu-west-1 and account 111122223333 in us-east-1 both get the host name " \
           "'111122223333'" in message


# ---- bad input ---------------------------------------------------------------------------------------------------

ONE = [{"id": "111122223333"}]


@pytest.mark.parametrize("config, option, words", [
    ({"regions": ["eu-west-1"]}, "accounts", "no accounts"),
    ({"regions": ["eu-west-1"], "accounts": []}, "accounts", "organizations: true"),
    ({"regions": ["eu-west-1"], "accounts": [{"id": "12345678901"}]}, "accounts[0].id", "12 digits"),
    ({"regions": ["eu-west-1"], "accounts": [{"id": "1234567890123"}]}, "accounts[0].id", "12 digits"),
    ({"regions": ["eu-west-1"], "accounts": [{"id": "12345678901a"}]}, "accounts[0].id", "12 digits"),
    ({"regions": ["eu-west-1"], "accounts": [{"id": 12345678901}]}, "accounts[0].id", "quote it"),
    ({"regions": ["eu-west-1"], "accounts": [{"name": "prod"}]}, "accounts[0].id", "12-digit id"),
    ({"regions": ["eu-west-1"], "accounts": ["111122223333"]}, "accounts[0]", "not a dict"),
    ({"regions": ["eu-west-1"], "accounts": [{"id": "111122223333", "role-arn": "x"}]}, "accounts[0]",
     "unknown key(s) role-arn"),
    ({"regions": ["eu-west-1"], "accounts": ONE + ONE}, "accounts[1].id", "listed twice (also as accounts[0])"),
    ({"regions": ["eu-west-1"], "accounts": [{"id": "111122223333", "name": ""}]}, "accounts[0].name", "non-empty"),
    ({"regions": [], "accounts": ONE}, "regions", "at least one region"),
    ({"accounts": ONE}, "regions", "at least one region"),
    ({"regions": ["eu-west"], "accounts": ONE}, "regions", "'eu-west' is not an AWS region name"),
    ({"regions": ["EU-WEST-1"], "accounts": ONE}, "regions", "'EU-WEST-1' is not an AWS region name"),
    ({"regions": ["eu_west_1"], "accounts": ONE}, "regions", "not an AWS region name"),
    ({"regions": ["xx-west-1"], "accounts": ONE}, "regions", "not an AWS region name"),
    ({"regions": ["eu-west-1", "cn-north-1"], "accounts": ONE}, "regions", "2 partitions (aws, aws-cn)"),
    ({"regions": ["eu-west-1"], "organizations": True, "organizations_ou_id": "ou-123"}, "organizations_ou_id",
     "is not the id of an organizational unit"),
    ({"regions": ["eu-west-1"], "organizations": True, "organizations_ou_id": "123456789012"},
     "organizations_ou_id", "is not the id of an organizational unit"),
    ({"regions": ["eu-west-1"], "accounts": ONE, "organizations_ou_id": "ou-ab12-cdef5678"}, "organizations_ou_id",
     "set organizations: true"),
    ({"regions": ["eu-west-1"], "organizations": True, "organizations_ou_recursive": True},
     "organizations_ou_recursive", "organizations_ou_id"),
    ({"regions": ["eu-west-1"], "accounts": ONE, "role_name": "my role"}, "role_name", "not an IAM role name"),
    ({"regions": ["eu-west-1"], "accounts": ONE, "role_name": "r" * 65}, "role_name", "not an IAM role name"),
    ({"regions": ["eu-west-1"], "accounts": ONE, "role_path": "automation"}, "role_path", "not an IAM path"),
    ({"regions": ["eu-west-1"], "accounts": ONE, "role_path": "/a//b/"}, "role_path", "not an IAM path"),
    ({"regions": ["eu-west-1"], "accounts": ONE, "external_id": "x"}, "external_id", "2 to 1224"),
    ({"regions": ["eu-west-1"], "accounts": ONE, "external_id": "has space"}, "external_id", "2 to 1224"),
    ({"regions": ["eu-west-1"], "accounts": [{"id": "111122223333", "external_id": "x" * 1225}]},
     "accounts[0].external_id", "2 to 1224"),
    ({"regions": ["eu-west-1"], "accounts": [{"id": "111122223333", "role_arn": "deployer"}]},
     "accounts[0].role_arn", "not the ARN of an IAM role"),
    ({"regions": ["eu-west-1"], "accounts": [{"id": "111122223333",
                                              "role_arn": "arn:aws:iam::111122223333:user/deployer"}]},
     "accounts[0].role_arn", "not the ARN of an IAM role"),
    ({"regions": ["eu-west-1"], "accounts": [{"id": "111122223333",
                                              "role_arn": "arn:aws:iam::111122223333:role/a//deployer"}]},
     "accounts[0].role_arn", "not the ARN of an IAM role"),
    ({"regions": ["eu-west-1"], "accounts": [{"id": "111122223333",
                                              "role_arn": "arn:aws:iam::444455556666:role/deployer"}]},
     "accounts[0].role_arn", "a role of account 444455556666, not of account 111122223333"),
    ({"regions": ["cn-north-1"], "accounts": [{"id": "111122223333",
                                               "role_arn": "arn:aws:iam::111122223333:role/deployer"}]},
     "accounts[0].role_arn", "in the aws partition, but the regions are in aws-cn"),
    ({"regions": ["eu-west-1"], "accounts": ONE, "hostname_template": "  "}, "hostname_template", "Jinja2"),
])
def test_bad_input_fails_before_any_aws_call_naming_the_option(parse, config, option, words):
    message = parse_error(parse, config)
    assert message.startswith("keyless.aws.accounts: {0}: ".format(option)), message
    assert words in message


# ---- constructed -------------------------------------------------------------------------------------------------

def test_keyed_groups_compose_and_groups_work_on_the_host_variables(parse):
    parsed = parse(dict(TWO_ACCOUNTS, keyed_groups=[{"key": "keyless_partition", "prefix": "partition"},
                                                    # (not default_value: ansible-core 2.17 applies it to "" only,
                                                    # 2.19 to null too; keyless_ou is null without an OU)
                                                    {"key": "keyless_ou | default('none', true)", "prefix": "unit"}],
                        compose={"short_id": "keyless_account_id[-4:]", "session": "'keyless-' ~ keyless_region"},
                        groups={"europe": "keyless_region.startswith('eu-')"}))
    assert parsed.members("partition_aws") == parsed.hosts
    assert parsed.members("unit_prod") == ["payments-eu-west-1", "payments-us-east-1"]
    assert parsed.members("unit_none") == ["444455556666-eu-west-1", "444455556666-us-east-1"]
    assert parsed.members("europe") == ["444455556666-eu-west-1", "payments-eu-west-1"]
    assert parsed.vars("payments-us-east-1")["short_id"] == "3333"
    assert parsed.vars("payments-us-east-1")["session"] == "keyless-us-east-1"


def test_strict_constructed_expressions_fail_on_an_undefined_variable(parse):
    from ansible.errors import AnsibleError

    with pytest.raises(AnsibleError):
        parse(dict(TWO_ACCOUNTS, strict=True, compose={"x": "no_such_variable.attribute"}))
    parsed = parse(dict(TWO_ACCOUNTS, compose={"x": "no_such_variable.attribute"}))
    assert "x" not in parsed.vars("payments-eu-west-1")


def test_assume_role_arn_is_not_assumed_for_a_static_list(parse):
    parsed = parse(dict(TWO_ACCOUNTS, assume_role_arn="arn:aws:iam::999988887777:role/read-organization"))
    assert len(parsed.hosts) == 4  # parse() fails the test when the plugin asks for an AWS client


# ---- AWS Organizations (moto, in process) ------------------------------------------------------------------------

@pytest.fixture
def org(monkeypatch):
    """An organization in moto: ``org.client``, ``org.root``, ``org.account(name, parent=None)``."""
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        import boto3

        client = boto3.client("organizations", region_name="us-east-1")
        client.create_organization(FeatureSet="ALL")

        class Org:
            pass

        org = Org()
        org.client = client
        org.root = client.list_roots()["Roots"][0]["Id"]

        def account(name, parent=None):
            status = client.create_account(AccountName=name, Email=name + "@example.com")["CreateAccountStatus"]
            if parent:
                client.move_account(AccountId=status["AccountId"], SourceParentId=org.root,
                                    DestinationParentId=parent)
            return status["AccountId"]

        def unit(name, parent=None):
            return client.create_organizational_unit(ParentId=parent or org.root, Name=name)[
                "OrganizationalUnit"]["Id"]

        def set_state(account_id, status, state):
            from moto.organizations.models import organizations_backends

            backend = organizations_backends[MANAGEMENT_ACCOUNT]["aws"]
            model = backend.get_account_by_id(account_id)
            model.status, model.state = status, state

        org.account, org.unit, org.set_state = account, unit, set_state
        yield org


def names(parsed):
    return sorted(set(parsed.vars(host)["keyless_account_name"] for host in parsed.hosts))


def calls_of(parsed, operation):
    return [params for name, params in parsed.calls if name == operation]


def test_organizations_lists_every_active_account_in_every_region(parse, org):
    prod = org.account("prod")
    org.account("staging")
    parsed = parse({"organizations": True, "regions": ["eu-west-1", "us-east-1"]}, aws=True)
    assert names(parsed) == ["master", "prod", "staging"]
    assert len(parsed.hosts) == 6
    host = parsed.vars("prod-eu-west-1")
    assert host["keyless_account_id"] == prod
    assert host["keyless_role_arn"] == "arn:aws:iam::{0}:role/OrganizationAccountAccessRole".format(prod)
    assert host["keyless_ou"] is None and host["keyless_ou_path"] == []
    assert [name for name, params in parsed.calls] == ["ListAccounts"]
    assert not [group for group in parsed.groups if group.startswith("ou_")]


def test_suspended_and_other_inactive_accounts_are_left_out(parse, org):
    org.account("prod")
    closed = org.account("closed")
    org.client.close_account(AccountId=closed)
    closing = org.account("closing")
    org.set_state(closing, "PENDING_CLOSURE", "PENDING_CLOSURE")
    pending = org.account("pending")
    org.set_state(pending, "ACTIVE", "PENDING_ACTIVATION")
    assert org.client.describe_account(AccountId=closed)["Account"]["Status"] == "SUSPENDED"
    parsed = parse({"organizations": True, "regions": ["eu-west-1"]}, aws=True)
    assert names(parsed) == ["master", "prod"]


def test_every_page_of_list_accounts_is_read_twenty_at_a_time(parse, org):
    created = [org.account("team-%02d" % n) for n in range(44)]
    parsed = parse({"organizations": True, "regions": ["eu-west-1"]}, aws=True)
    assert len(parsed.hosts) == 45
    assert set(created) < set(parsed.vars(host)["keyless_account_id"] for host in parsed.hosts)
    pages = calls_of(parsed, "ListAccounts")
    assert [params.get("MaxResults") for params in pages] == [20, 20, 20]
    assert "NextToken" not in pages[0] and pages[1]["NextToken"] and pages[2]["NextToken"]


def tree(org):
    """Workloads (prod-a) > Prod (prod-b, prod-c) > Payments (pay); Workloads > Staging (stage); Sandbox (play)."""
    workloads = org.unit("Workloads")
    prod = org.unit("Prod", workloads)
    payments = org.unit("Payments", prod)
    staging = org.unit("Staging", workloads)
    sandbox = org.unit("Sandbox")
    org.account("prod-a", workloads)
    org.account("prod-b", prod)
    org.account("prod-c", prod)
    org.account("pay", payments)
    org.account("stage", staging)
    org.account("play", sandbox)
    closed = org.account("old", prod)
    org.client.close_account(AccountId=closed)
    return {"workloads": workloads, "prod": prod, "payments": payments, "staging": staging, "sandbox": sandbox}


def test_organizations_ou_id_lists_the_accounts_directly_under_the_ou(parse, org):
    units = tree(org)
    parsed = parse({"organizations": True, "organizations_ou_id": units["prod"], "regions": ["eu-west-1"]},
                   aws=True)
    assert names(parsed) == ["prod-b", "prod-c"]
    host = parsed.vars("prod-b-eu-west-1")
    assert (host["keyless_ou"], host["keyless_ou_id"], host["keyless_ou_path"]) == ("Prod", units["prod"], ["Prod"])
    assert [group for group in parsed.groups if group.startswith("ou_")] == ["ou_prod"]
    assert [name for name, params in parsed.calls] == ["DescribeOrganizationalUnit", "ListAccountsForParent"]
    assert calls_of(parsed, "ListAccountsForParent")[0]["ParentId"] == units["prod"]


def test_organizations_ou_recursive_walks_every_ou_below_and_groups_each_account_by_its_ous(parse, org):
    units = tree(org)
    parsed = parse({"organizations": True, "organizations_ou_id": units["workloads"],
                    "organizations_ou_recursive": True, "regions": ["eu-west-1"]}, aws=True)
    assert names(parsed) == ["pay", "prod-a", "prod-b", "prod-c", "stage"]
    pay = parsed.vars("pay-eu-west-1")
    assert (pay["keyless_ou"], pay["keyless_ou_id"]) == ("Payments", units["payments"])
    assert pay["keyless_ou_path"] == ["Workloads", "Prod", "Payments"]
    assert parsed.members("ou_workloads") == ["pay-eu-west-1", "prod-a-eu-west-1", "prod-b-eu-west-1",
                                              "prod-c-eu-west-1", "stage-eu-west-1"]
    assert parsed.members("ou_prod") == ["pay-eu-west-1", "prod-b-eu-west-1", "prod-c-eu-west-1"]
    assert parsed.members("ou_payments") == ["pay-eu-west-1"]
    assert parsed.members("ou_staging") == ["stage-eu-west-1"]
    assert "ou_sandbox" not in parsed.groups
    walked = [params["ParentId"] for params in calls_of(parsed, "ListOrganizationalUnitsForParent")]
    assert sorted(walked) == sorted([units["workloads"], units["prod"], units["payments"], units["staging"]])


def test_the_root_with_recursion_groups_every_account_of_the_organization_by_ou(parse, org):
    units = tree(org)
    parsed = parse({"organizations": True, "organizations_ou_id": org.root, "organizations_ou_recursive": True,
                    "regions": ["eu-west-1"]}, aws=True)
    assert names(parsed) == ["master", "pay", "play", "prod-a", "prod-b", "prod-c", "stage"]
    assert parsed.vars("master-eu-west-1")["keyless_ou_path"] == ["Root"]
    assert parsed.vars("play-eu-west-1")["keyless_ou_id"] == units["sandbox"]
    assert len(parsed.members("ou_root")) == 7
    assert [name for name, params in parsed.calls][:2] == ["ListRoots", "ListAccountsForParent"]


@pytest.mark.parametrize("ou_id", ["ou-zzzz-zzzzzzzz", "r-zzzz"])
def test_an_unknown_ou_or_root_fails_naming_organizations_ou_id(parse, org, ou_id):
    message = parse_error(parse, {"organizations": True, "organizations_ou_id": ou_id, "regions": ["eu-west-1"]},
                          aws=True)
    assert message.startswith("keyless.aws.accounts: organizations_ou_id: ")
    assert ou_id in message


def test_static_entries_add_their_settings_to_the_accounts_organizations_lists(parse, org):
    prod = org.account("prod")
    closed = org.account("closed")
    org.client.close_account(AccountId=closed)
    parsed = parse({"organizations": True, "regions": ["eu-west-1"], "accounts": [
        {"id": prod, "role_arn": "arn:aws:iam::{0}:role/own".format(prod), "external_id": "prod-ext", "ou": "core"},
        {"id": closed, "name": "closed"},
        {"id": "999988887777", "name": "outside"},
    ]}, aws=True)
    assert names(parsed) == ["master", "outside", "prod"]
    host = parsed.vars("prod-eu-west-1")
    assert (host["keyless_role_arn"], host["keyless_external_id"], host["keyless_ou"]) == \
        ("arn:aws:iam::{0}:role/own".format(prod), "prod-ext", "core")
    assert parsed.warnings == ["keyless.aws.accounts: account {0} of accounts is SUSPENDED in AWS Organizations: it "
                               "is left out.".format(closed)]


@pytest.mark.parametrize("code, message, hint", [
    # The errors of ListAccounts in botocore's organizations model; the messages are AWS's documented ones
    # (https://docs.aws.amazon.com/organizations/latest/APIReference/CommonErrors.html and the API reference).
    ("AWSOrganizationsNotInUseException", "Your account is not a member of an organization.",
     "The account of these credentials is in no organization"),
    ("AccessDeniedException", "You don't have permissions to access this resource.",
     "only the management account and its delegated administrators, with organizations:ListAccounts allowed"),
])
def test_an_aws_organizations_refusal_fails_with_its_code_message_and_what_to_do(parse, org, code, message, hint):
    # moto answers ListAccounts with an empty list outside an organization, where AWS refuses with
    # AWSOrganizationsNotInUseException: the answer is AWS's, given through botocore.
    from ansible.errors import AnsibleError

    with pytest.raises(AnsibleError) as raised:
        parse({"organizations": True, "regions": ["eu-west-1"]}, aws=True,
              errors={"ListAccounts": (400, code, message)})
    text = str(raised.value)
    assert "AWS Organizations list_accounts failed: {0}: {1}".format(code, message) in text
    assert hint in text


def test_a_throttled_organizations_call_is_retried(parse, org, monkeypatch):
    org.account("prod")
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    parsed = parse({"organizations": True, "regions": ["eu-west-1"]}, aws=True,
                   errors={"ListAccounts": (400, "TooManyRequestsException", "Rate exceeded", 2)})
    assert names(parsed) == ["master", "prod"]
    assert len(calls_of(parsed, "ListAccounts")) == 3


# ---- the cache ---------------------------------------------------------------------------------------------------

def test_a_second_parse_reads_the_cache_and_makes_no_aws_call(parse, org, tmp_path):
    units = tree(org)
    config = {"organizations": True, "organizations_ou_id": units["workloads"], "organizations_ou_recursive": True,
              "regions": ["eu-west-1", "us-east-1"], "cache": True, "cache_plugin": "ansible.builtin.jsonfile",
              "cache_connection": str(tmp_path / "cache")}
    first = parse(config, aws=True)
    assert first.calls
    assert os.listdir(str(tmp_path / "cache"))
    org.account("late", units["workloads"])
    second = parse(config, aws=True)
    assert second.calls == []
    assert second.hosts == first.hosts
    assert second.vars("pay-us-east-1")["keyless_ou_path"] == ["Workloads", "Prod", "Payments"]
    assert second.members("ou_prod") == first.members("ou_prod")
    # --flush-cache (cache=False) reads AWS Organizations again, and the cache keeps the new answer.
    flushed = parse(config, aws=True, cache=False)
    assert flushed.calls and "late-eu-west-1" in flushed.hosts
    assert parse(config, aws=True).calls == []
    assert "late-eu-west-1" in parse(config, aws=True).hosts


def test_the_cache_is_not_used_for_another_query_or_when_caching_is_off(parse, org, tmp_path):
    units = tree(org)
    config = {"organizations": True, "organizations_ou_id": units["prod"], "regions": ["eu-west-1"], "cache": True,
              "cache_plugin": "ansible.builtin.jsonfile", "cache_connection": str(tmp_path / "cache")}
    assert names(parse(config, aws=True)) == ["prod-b", "prod-c"]
    other = parse(dict(config, organizations_ou_id=units["staging"]), aws=True)
    assert other.calls and names(other) == ["stage"]
    assert parse(dict(config, organizations_ou_id=units["staging"]), aws=True).calls == []
    again = parse(config, aws=True)
    assert again.calls and names(again) == ["prod-b", "prod-c"]
    assert parse(dict(config, cache=False), aws=True).calls
    assert parse(dict(config, cache=False), aws=True).calls
