"""The AWX / Automation Controller credential type of the collection,
extensions/awx/credential_types/keyless_assume_role.yml, as AWX takes it and runs it.

1. Its shape is one AWX's API accepts (read in AWX's source, ansible/awx 24.6, not copied):
   ``awx/main/fields.py`` ``CredentialTypeInputField`` (inputs: only ``fields`` and ``required``;
   each field has an ``id`` that is a variable name, not ``tower``, unique, a ``label``, a
   ``type`` of ``string`` or ``boolean`` only, ``choices``/``multiline``/``format``/``secret`` on
   strings only, no other key) and ``CredentialTypeInjectorField`` (injectors: only ``file``,
   ``env`` and ``extra_vars``; no ``ANSIBLE_`` environment variable; every template renders with
   ``StrictUndefined`` over the defined field ids, so an injector names no field that does not
   exist); ``awx/api/serializers.py`` ``CredentialTypeSerializer`` (a custom type's ``kind`` is
   ``cloud`` or ``net``); the ``awx.awx.credential_type`` module's options (name, description,
   kind, inputs, injectors).
2. Its injectors render as ``CredentialType.inject_credential`` (``awx/main/models/credential.py``)
   renders them: a Jinja2 ``ImmutableSandboxedEnvironment`` over a namespace of the credential's
   inputs where a field left empty is absent (so it renders as ""), booleans default to False; the
   rendered ``extra_vars`` are written as YAML with every string tagged ``!unsafe``
   (``awx/main/utils/safe_yaml.py`` ``safe_dump``) to a file in ``env/`` and passed as
   ``-e @file`` among the job's arguments (``env/cmdline``), before runner's
   ``-e @env/extravars`` (the survey), so a survey's answer beats the credential's variable of the
   same name; ``env`` injectors go into the job's environment.
3. ansible-runner then runs playbooks/audit.yml with it against the sandbox's organization, from a
   private data directory laid out as AWX lays it out (packaging_support.awx_private_data_dir), the
   Amazon Web Services credential (the management account's key) in the job's environment.
"""

import copy
import json
import os
import re
import sys
import tempfile

import pytest
import yaml

from packaging_support import BIN, awx_inventory_script, awx_private_data_dir, run, run_awx_job, sandbox_aws_env
from packaging_support import user_env, write_ansible_cfg
from runner import plain
from sandbox.organizations import client_for, credentials_for, role_arn, seed_organization

pytest.importorskip("ansible_runner", reason="ansible-runner is in requirements-dev.txt, not in this venv")
jinja_sandbox = pytest.importorskip("jinja2.sandbox")

CREDENTIAL_TYPE = os.path.join("extensions", "awx", "credential_types", "keyless_assume_role.yml")
# The "Amazon Web Services" credential of the job: the identity that assumes the roles.
AWS_KEY = "AKIAAWXJOBCREDENTIAL"
AWS_SECRET = "awxInjectedSecretKeyNeverShownAnywhere00"
ROLE_NAME = "keyless-audit"  # not Organizations' default role: only the credential names it
EXTERNAL_ID = "awx-ext-7f3a9c41d2"
SESSION_NAME = "awx-audit-job42"

# ---- what AWX accepts (awx/main/fields.py, awx/api/serializers.py) -------------------------------

FIELD_KEYS = {"id", "label", "help_text", "type", "format", "choices", "multiline", "secret", "ask_at_runtime",
              "default"}
FIELD_ID = re.compile(r"^[a-zA-Z_]+[a-zA-Z0-9_]*$")
ENV_NAME = re.compile(r"^[a-zA-Z_]+[a-zA-Z0-9_]*$")
EXTRA_VAR_NAME = re.compile(r"^[a-zA-Z_{}]+[a-zA-Z0-9_{}]*$")
MODULE_OPTIONS = {"name", "description", "kind", "inputs", "injectors"}  # awx.awx.credential_type's, besides state


def awx_problems(credential_type):
    """What AWX's API would refuse in ``credential_type`` (a list of sentences; empty: accepted)."""
    problems = []
    if not isinstance(credential_type, dict):
        return ["the file is not a mapping"]
    unknown = set(credential_type) - MODULE_OPTIONS
    if unknown:
        problems.append("keys awx.awx.credential_type does not take: {0}".format(sorted(unknown)))
    if not isinstance(credential_type.get("name"), str) or not credential_type["name"]:
        problems.append("name: a non-empty string is required")
    if credential_type.get("kind") not in ("cloud", "net"):
        problems.append("kind: Must be 'cloud' or 'net', not {0}".format(credential_type.get("kind")))
    inputs = credential_type.get("inputs") or {}
    if set(inputs) - {"fields", "required"}:
        problems.append("inputs: only fields and required, not {0}".format(
            sorted(set(inputs) - {"fields", "required"})))
    ids = []
    for field in inputs.get("fields", []):
        if not isinstance(field, dict):
            problems.append("inputs.fields: {0!r} is not a mapping".format(field))
            continue
        field_id = field.get("id")
        if set(field) - FIELD_KEYS:
            problems.append("{0}: keys AWX does not know: {1}".format(field_id, sorted(set(field) - FIELD_KEYS)))
        if not isinstance(field_id, str) or not FIELD_ID.match(field_id):
            problems.append("{0} is an invalid variable name".format(field_id))
        if field_id == "tower":
            problems.append('"tower" is a reserved field name')
        if field_id in ids:
            problems.append("field IDs must be unique ({0})".format(field_id))
        ids.append(field_id)
        if not isinstance(field.get("label"), str):
            problems.append("{0}: label is required".format(field_id))
        kind = field.get("type", "string")
        if kind not in ("string", "boolean"):
            problems.append("{0}: type {1!r} is not one of ['string', 'boolean']".format(field_id, kind))
        for key in ("choices", "multiline", "format", "secret"):
            if key in field and kind != "string":
                problems.append("{0} not allowed for {1} type ({2})".format(key, kind, field_id))
        if "format" in field and field["format"] not in ("ssh_private_key", "url"):
            problems.append("{0}: format {1!r}".format(field_id, field["format"]))
        for key in ("multiline", "secret", "ask_at_runtime"):
            if key in field and not isinstance(field[key], bool):
                problems.append("{0}: {1} must be a boolean".format(field_id, key))
        wanted = {"string": str, "boolean": bool}.get(kind, str)
        # A bool is no string, and an int no bool: the exact type, as AWX's JSON schema checks it.
        if "default" in field and not (isinstance(field["default"], wanted)
                                       and isinstance(field["default"], bool) == (wanted is bool)):
            problems.append("{0} is not a {1}".format(field["default"], kind))
    required = inputs.get("required", [])
    if not isinstance(required, list) or not all(isinstance(item, str) for item in required):
        problems.append("inputs.required: a list of field ids")
    else:
        problems.extend("inputs.required: {0} is no field".format(item) for item in required if item not in ids)

    injectors = credential_type.get("injectors") or {}
    if set(injectors) - {"file", "env", "extra_vars"}:
        problems.append("injectors: only file, env and extra_vars, not {0}".format(
            sorted(set(injectors) - {"file", "env", "extra_vars"})))
    strict = jinja_sandbox.ImmutableSandboxedEnvironment(undefined=__import__("jinja2").StrictUndefined)
    namespace = dict((field_id, "EXAMPLE") for field_id in ids)

    def check_template(where, template):
        if not isinstance(template, str):
            problems.append("{0}: a template string, not {1!r}".format(where, template))
            return
        try:
            strict.from_string(template).render(namespace)
        except Exception as exc:  # pylint: disable=broad-except
            # (UndefinedError, SecurityError, TemplateSyntaxError: each a problem of the type)
            problems.append("{0} uses an undefined field or is no template ({1})".format(where, exc))

    for name, template in (injectors.get("env") or {}).items():
        if not ENV_NAME.match(name) or name.startswith("ANSIBLE_"):
            problems.append("env: {0} may not be injected".format(name))
        check_template("env." + name, template)

    def check_extra_vars(where, node):
        if isinstance(node, dict):
            for key, value in node.items():
                if where is None and not EXTRA_VAR_NAME.match(str(key)):
                    problems.append("extra_vars: {0} is no variable name".format(key))
                check_template("extra_vars key " + str(key), str(key))
                check_extra_vars(key if where is None else "{0}.{1}".format(where, key), value)
        elif isinstance(node, list):
            for number, item in enumerate(node):
                check_extra_vars("{0}[{1}]".format(where, number), item)
        else:
            check_template("extra_vars " + str(where), node)

    check_extra_vars(None, injectors.get("extra_vars") or {})
    return problems


# ---- how AWX renders the injectors (awx/main/models/credential.py inject_credential) -------------


class _UnsafeDumper(yaml.SafeDumper):
    """Every string as ``!unsafe``: Ansible never templates what a credential injects."""

    def represent_str(self, data):
        return self.represent_scalar("!unsafe", data)


_UnsafeDumper.add_representer(str, _UnsafeDumper.represent_str)


def inject(credential_type, inputs, private_data_dir, envvars, args):
    """Render ``credential_type``'s injectors for a credential with ``inputs`` into the job:
    ``env`` ones into ``envvars``, ``extra_vars`` ones into a file of ``<pdd>/env/`` added to
    ``args`` as ``-e @file``. Returns the rendered extra vars."""
    fields = credential_type["inputs"].get("fields", [])
    namespace = {}
    for name, value in inputs.items():
        if isinstance(value, bool) or len(value):
            namespace[name] = value  # a field left empty is left out: it renders as ""
    for field in fields:
        if field.get("type") == "boolean" and field["id"] not in inputs:
            namespace[field["id"]] = False
    environment = jinja_sandbox.ImmutableSandboxedEnvironment()
    for name, template in (credential_type["injectors"].get("env") or {}).items():
        envvars[name] = environment.from_string(template).render(**namespace)

    def render(node):
        if isinstance(node, dict):
            return dict((render(key), render(value)) for key, value in node.items())
        if isinstance(node, list):
            return [render(item) for item in node]
        return environment.from_string(node).render(**namespace)

    extra_vars = render(credential_type["injectors"].get("extra_vars") or {})
    if extra_vars:
        os.makedirs(str(private_data_dir / "env"), exist_ok=True)
        handle, path = tempfile.mkstemp(dir=str(private_data_dir / "env"))
        with os.fdopen(handle, "w") as stream:
            stream.write(yaml.dump(extra_vars, Dumper=_UnsafeDumper, default_flow_style=False))
        os.chmod(path, 0o400)
        args.extend(["-e", "@" + path])
    return extra_vars


@pytest.fixture
def credential_type(installed_collections):
    """The file as a user's installed collection holds it (it ships in the tarball)."""
    path = installed_collections / "ansible_collections" / "keyless" / "aws" / CREDENTIAL_TYPE
    assert path.is_file(), "{0} is not in the built collection".format(CREDENTIAL_TYPE)
    with open(str(path)) as handle:
        return yaml.safe_load(handle)


def test_awx_accepts_the_credential_type(credential_type):
    assert awx_problems(credential_type) == []
    fields = dict((field["id"], field) for field in credential_type["inputs"]["fields"])
    assert sorted(fields) == ["external_id", "role_arn", "role_name", "session_duration", "session_name"]
    assert all(field.get("help_text") for field in fields.values())
    assert fields["external_id"]["secret"] is True
    assert credential_type["kind"] == "cloud"
    # Every field reaches the playbooks, under a name of its own (extra vars beat host vars).
    assert credential_type["injectors"] == {"extra_vars": dict(
        ("keyless_credential_" + name, "{{ " + name + " }}") for name in fields)}

    # The checks refuse what AWX refuses.
    for breaking, expected in (
            (lambda t: t["inputs"]["fields"][4].update(type="integer"), "is not one of"),
            (lambda t: t["injectors"]["extra_vars"].update(keyless_credential_region="{{ region }}"), "undefined"),
            (lambda t: t.update(kind="ssh"), "Must be 'cloud' or 'net'"),
            (lambda t: t["inputs"]["fields"].append(dict(t["inputs"]["fields"][0])), "must be unique"),
            (lambda t: t["inputs"].update(required=["role"]), "is no field"),
            (lambda t: t["injectors"].update(env={"ANSIBLE_CONFIG": "{{ role_arn }}"}), "may not be injected")):
        broken = copy.deepcopy(credential_type)
        breaking(broken)
        assert any(expected in problem for problem in awx_problems(broken)), (expected, awx_problems(broken))


def test_injectors_render_as_awx_renders_them(credential_type, tmp_path):
    args = []
    extra_vars = inject(credential_type, {"role_name": ROLE_NAME, "external_id": EXTERNAL_ID, "role_arn": ""},
                        tmp_path, {}, args)
    assert extra_vars == {"keyless_credential_role_arn": "", "keyless_credential_role_name": ROLE_NAME,
                          "keyless_credential_external_id": EXTERNAL_ID, "keyless_credential_session_name": "",
                          "keyless_credential_session_duration": ""}
    assert args[0] == "-e" and args[1].startswith("@" + str(tmp_path / "env"))
    # Keys and values alike tagged !unsafe, as AWX's safe_dump writes them.
    written = open(args[1][1:]).read().splitlines()
    assert "!unsafe 'keyless_credential_role_name': !unsafe 'keyless-audit'" in written
    assert "!unsafe 'keyless_credential_role_arn': !unsafe ''" in written


# ---- the job -------------------------------------------------------------------------------------


def organization(sandbox):
    """Members web and batch whose role keyless-audit asks for EXTERNAL_ID, one instance each
    without a profile (web in us-east-1, batch in eu-west-1); {host: (account id, region)}."""
    org = seed_organization(sandbox, ["web", "batch"], role_name=ROLE_NAME, external_id=EXTERNAL_ID)
    hosts = {}
    for name, region in (("web", "us-east-1"), ("batch", "eu-west-1")):
        account = org["ids"][name]
        session = credentials_for(sandbox, account, ROLE_NAME, "test-seed", external_id=EXTERNAL_ID)
        client_for(sandbox, session, "ec2", region_name=region).run_instances(
            ImageId="ami-12345678", MinCount=1, MaxCount=1, MetadataOptions={"HttpTokens": "optional"})
        hosts["{0}-{1}".format(name, region)] = (account, region)
    return hosts


def job_dir(tmp_path, installed_collections, sandbox, credential_type, inputs, inventory, report_dir):
    """The private data directory of an audit.yml job with the Amazon Web Services credential and a
    credential of our type with ``inputs``; the survey answers the report's folder."""
    envvars = {"AWS_ACCESS_KEY_ID": AWS_KEY, "AWS_SECRET_ACCESS_KEY": AWS_SECRET}
    args = ["-u", "root", "--forks=5"]
    os.makedirs(str(tmp_path / "job" / "env"))
    inject(credential_type, inputs, tmp_path / "job", envvars, args)
    survey = {"audit_report_dir": str(report_dir), "audit_imdsv1_usage_window": 0, "awx_job_id": 42}
    return awx_private_data_dir(tmp_path, installed_collections, sandbox, inventory, survey, envvars, args)


def assumed_secrets(sandbox):
    """The secret keys and session tokens of every session STS minted in the sandbox."""
    from moto.sts.models import sts_backends

    secrets = []
    for account in list(sts_backends.keys()):
        for backend in sts_backends[account].values():
            secrets.extend(s for role in backend.assumed_roles for s in (role.secret_access_key, role.session_token))
    return secrets


def test_audit_over_two_accounts_with_the_credential(installed_collections, sandbox, request_signers, credential_type,
                                                     tmp_path):
    hosts = organization(sandbox)
    # The inventory AWX holds for these hosts (entered by hand, or imported from a source): each
    # host's account and region, no role: the credential names it.
    inventory = {"_meta": {"hostvars": dict(
        (host, {"keyless_account_id": account, "keyless_region": region, "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable})
        for host, (account, region) in hosts.items())},
        "all": {"children": ["ungrouped", "keyless_accounts"]}, "keyless_accounts": {"hosts": sorted(hosts)}}
    report_dir = tmp_path / "report"
    pdd = job_dir(tmp_path, installed_collections, sandbox, credential_type,
                  {"role_name": ROLE_NAME, "external_id": EXTERNAL_ID, "session_name": SESSION_NAME,
                   "session_duration": "1800"}, awx_inventory_script(inventory), report_dir)
    since = len(sandbox.app.log)
    del request_signers[:]  # the seeding's requests
    job = run_awx_job(pdd, "playbooks/audit.yml", "42", tmp_path / "home", "awx-credential-audit")
    signers = list(request_signers)
    assert (job.status, job.rc) == ("successful", "0"), "the job failed (log {0}):\n{1}".format(
        job.result.log_path, job.stdout[-5000:])

    # Each host assumed keyless-audit in its own account, with the credential's external id, session
    # name and duration, signed with the Amazon Web Services credential's key.
    assumed = [call["params"] for call in sandbox.calls(action="AssumeRole", since=since)]
    assert sorted((p["RoleArn"], p["RoleSessionName"], p.get("ExternalId"), p.get("DurationSeconds"))
                  for p in assumed) == sorted((role_arn(account, ROLE_NAME), SESSION_NAME, EXTERNAL_ID, "1800")
                                              for account, _region in hosts.values())
    assert [s["key"] for s in signers if s["action"] == "AssumeRole"] == [AWS_KEY, AWS_KEY]
    # Everything else was signed with an assumed role's credentials, in each member account; the
    # management key read nothing.
    work = [s for s in signers if s["action"] != "AssumeRole"]
    assert work and all(s["key"].startswith("ASIA") and s["token"] for s in work), \
        sorted(set((s["service"], s["action"], s["key"]) for s in work if not s["key"].startswith("ASIA")))
    accounts = sorted(account for account, _region in hosts.values())
    assert sorted(set(s["account"] for s in work)) == accounts
    for account in accounts:
        assert set(s["service"] for s in work if s["account"] == account) >= {"ec2", "iam"}
    # Each host's account came from STS's answer to AssumeRole: no GetCallerIdentity.
    assert not [s for s in work if s["action"] == "GetCallerIdentity"]
    assert len(set(s["key"] for s in work)) == 2  # one session per host

    # The job's one report covers both accounts, each finding in its own.
    report = json.loads((report_dir / "keyless-audit.json").read_text())
    assert sorted((t["target"], t["account_id"], t["region"]) for t in report["targets"]) == sorted(
        (host, account, region) for host, (account, region) in hosts.items())
    assert report["failed_targets"] == []
    unprofiled = [(f["account_id"], f["region"]) for f in report["findings"] if f["kind"] == "instance_without_profile"]
    assert sorted(unprofiled) == sorted(hosts.values())

    # Nothing secret in what AWX shows and stores of the job.
    shown = job.shown()
    for secret in [AWS_SECRET, EXTERNAL_ID] + assumed_secrets(sandbox):
        assert secret not in shown
    assert not job.stats().get("failures") and not job.stats().get("dark")


def inventory_update(tmp_path, installed_collections, sandbox, hosts):
    """An AWX inventory update of a source from the project: ansible-inventory --list --export over
    a keyless.aws.accounts file (static list), as awx/main/tasks/jobs.py RunInventoryUpdate runs it;
    the JSON AWX imports."""
    source = tmp_path / "source"
    source.mkdir()
    accounts = [{"id": account, "name": host.split("-", 1)[0]} for host, (account, _region) in sorted(hosts.items())]
    (source / "org.keyless_accounts.yml").write_text(yaml.safe_dump(
        {"plugin": "keyless.aws.accounts", "regions": ["us-east-1"], "accounts": accounts, "role_name": ROLE_NAME,
         "compose": {"ansible_python_interpreter": repr(sys.executable)}}))
    output = tmp_path / "inventory-update.json"
    env = user_env(str(tmp_path / "update-home"),
                   {"ANSIBLE_COLLECTIONS_PATH": str(installed_collections), "ANSIBLE_INVENTORY_UNPARSED_FAILED": "1"})
    result = run([os.path.join(BIN, "ansible-inventory"), "--list", "--export", "-i",
                  str(source / "org.keyless_accounts.yml"), "--output", str(output), "--playbook-dir", str(source)],
                 env, str(source), "awx-inventory-update")
    assert result.returncode == 0, result.output
    return plain(json.loads(output.read_text()))


def test_wrong_external_id_fails_naming_the_role(installed_collections, sandbox, request_signers, credential_type,
                                                 tmp_path):
    hosts = organization(sandbox)
    # The inventory from a keyless.aws.accounts source: every host names its role (keyless_role_arn).
    data = inventory_update(tmp_path, installed_collections, sandbox, hosts)
    arns = dict((host, variables["keyless_role_arn"]) for host, variables in data["_meta"]["hostvars"].items())
    assert arns == dict(("{0}-us-east-1".format(host.split("-", 1)[0]), role_arn(account, ROLE_NAME))
                        for host, (account, _region) in hosts.items())
    wrong = "awx-wrong-external-id-0d9"
    pdd = job_dir(tmp_path, installed_collections, sandbox, credential_type,
                  {"external_id": wrong, "session_name": SESSION_NAME, "role_name": "not-this-role"},
                  awx_inventory_script(data), tmp_path / "r")
    since = len(sandbox.app.log)
    del request_signers[:]
    job = run_awx_job(pdd, "playbooks/audit.yml", "43", tmp_path / "home", "awx-credential-wrong-external-id")
    assert job.status == "failed", job.stdout[-5000:]

    # The wrong external id reached STS, which refused it; nothing else was called, with any key.
    refused = sandbox.calls(action="AssumeRole", since=since)
    assert sorted((c["params"]["RoleArn"], c["params"].get("ExternalId"), c["status"]) for c in refused) == \
        sorted((arn, wrong, 403) for arn in arns.values())
    assert [s["action"] for s in request_signers] == ["AssumeRole", "AssumeRole"]
    for host, arn in arns.items():
        assert "Could not assume {0} for {1}".format(arn, host) in job.stdout
    assert "with this external id" in job.stdout
    assert job.stats()["failures"] == dict((host, 1) for host in arns)
    for secret in (wrong, AWS_SECRET):
        assert secret not in job.shown()


def test_what_the_credential_cannot_give_fails_the_host_alone(installed_collections, sandbox, tmp_path):
    """target.yml's refusals, before any AWS call: a credential's role name for a host with no account,
    a credential's role ARN for a host of another account, a session duration STS does not take
    (DurationSeconds 900 to 43200, https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html).
    (The credential's variables as host variables here: the rules are the same, one run.) A fifth host,
    with nothing to assume, audits with the controller's credentials all the same."""
    hosts = {
        "fine": {},
        "no-account": {"keyless_credential_role_name": ROLE_NAME},
        "other-account": {"keyless_account_id": "111111111111",
                          "keyless_credential_role_arn": role_arn("222222222222", ROLE_NAME)},
        "short-session": {"keyless_role_arn": role_arn("111111111111", ROLE_NAME),
                          "keyless_credential_session_duration": "60"},
        "long-session": {"keyless_role_arn": role_arn("111111111111", ROLE_NAME), "keyless_session_duration": 43201},
    }
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"keyless_accounts": {
        "hosts": hosts, "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}}))
    env = user_env(str(tmp_path / "home"), sandbox_aws_env(sandbox))
    env["ANSIBLE_CONFIG"] = write_ansible_cfg(str(tmp_path), str(installed_collections))
    playbook = installed_collections / "ansible_collections" / "keyless" / "aws" / "playbooks" / "audit.yml"
    since = len(sandbox.app.log)
    result = run([os.path.join(BIN, "ansible-playbook"), "-i", str(inventory), str(playbook), "-f", "5",
                  "-e", "audit_report_dir={0}".format(tmp_path / "report")], env, str(tmp_path), "awx-credential-refusals")
    assert result.returncode == 2, result.output[-4000:]
    output = " ".join(result.output.split())
    assert ("The credential's role name {0} needs the account to assume it in: no-account has no "
            "keyless_account_id".format(ROLE_NAME)) in output
    assert ("The credential's role ARN {0} is in account 222222222222, but other-account is account "
            "111111111111".format(role_arn("222222222222", ROLE_NAME))) in output
    assert "The session duration 60 (keyless_session_duration, or the credential's Session duration)" in output
    assert "The session duration 43201 " in output
    # The four refused before any AWS call (no AssumeRole); the fifth audited alone.
    assert not [c for c in sandbox.calls(since=since) if c["action"] == "AssumeRole"]
    assert re.search(r"\nfine +: ok=\d+ +changed=\d+ +unreachable=0 +failed=0", result.output), result.output[-3000:]
    report = json.loads((tmp_path / "report" / "keyless-audit.json").read_text())
    assert [t["target"] for t in report["targets"]] == ["fine"]
    assert sorted(report["failed_targets"]) == sorted(h for h in hosts if h != "fine")
