"""The Galaxy tarball: nothing but the product, and it works once installed somewhere else."""

import fnmatch
import json
import os
import subprocess
import tarfile

from packaging_support import BIN, ROOT, galaxy_version, playbook_args, run, run_smoke, sandbox_aws_env, user_env, write_ansible_cfg

# What a user gets. tests/ and extensions/molecule/ ship, as Galaxy collections do (ansible-test
# and Automation Hub's import read tests/; Molecule scenarios of a collection live in extensions/).
TOP_LEVEL = {
    "MANIFEST.json", "FILES.json", "README.md", "CHANGELOG.rst", "LICENSE", "COPYING",
    "requirements.txt", "bindep.txt",
    "meta", "plugins", "roles", "playbooks", "docs", "changelogs", "tests", "extensions",
}
# Never in the tarball, at any depth: build output, caches, developer tooling, VCS.
FORBIDDEN_PARTS = {
    ".git", ".venv", ".build", ".ansible", ".pytest_cache", "__pycache__", ".tox", ".cache",
    "bench", "scripts", "context", "_build", "site",
}
FORBIDDEN_NAMES = {
    "Makefile", "ansible.cfg", "pytest.ini", "requirements-dev.txt", ".gitignore", ".ansible-lint",
    "keyless-aws-ee.yml", ".plugin-cache.yaml",
}
FORBIDDEN_GLOBS = ("*.pyc", "*.tar.gz", "*.whl", "*.log", "*.retry", "*.orig", "*.rej", "*~", "*.swp")
# The product, by folder: every file of these that git tracks (or would) must ship.
PRODUCT_DIRS = ("plugins", "roles", "playbooks", "meta")


def members(tarball):
    with tarfile.open(str(tarball)) as archive:
        return sorted(m.name[2:] if m.name.startswith("./") else m.name for m in archive.getmembers() if m.isfile())


def test_tarball_holds_only_the_product(collection_tarball):
    names = members(collection_tarball)
    problems = []
    for name in names:
        parts = name.split("/")
        if parts[0] not in TOP_LEVEL:
            problems.append("{0}: not part of the product (top level {1!r})".format(name, parts[0]))
        elif FORBIDDEN_PARTS.intersection(parts[:-1]) or parts[-1] in FORBIDDEN_NAMES:
            problems.append("{0}: build output, cache or developer tooling".format(name))
        elif any(fnmatch.fnmatch(parts[-1], pattern) for pattern in FORBIDDEN_GLOBS):
            problems.append("{0}: generated or temporary file".format(name))
        elif name.startswith("tests/output/"):
            problems.append("{0}: test output".format(name))
        elif parts[0] == "docs" and not name.endswith(".md"):
            problems.append("{0}: docs ship as Markdown pages only".format(name))
    assert not problems, "the tarball holds more than the product:\n" + "\n".join(problems)

    for required in ("MANIFEST.json", "FILES.json", "README.md", "meta/runtime.yml", "meta/execution-environment.yml",
                     "requirements.txt", "bindep.txt", "plugins/modules/iam_instance_profile.py",
                     "playbooks/provision.yml", "roles/instance_profile/meta/argument_specs.yml"):
        assert required in names, "{0} is missing from the tarball".format(required)

    with tarfile.open(str(collection_tarball)) as archive:
        manifest = json.load(archive.extractfile("MANIFEST.json"))
    info = manifest["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == ("keyless", "aws", galaxy_version())
    assert info["dependencies"] == {"amazon.aws": ">=9.0.0"}
    assert os.path.getsize(str(collection_tarball)) < 2 * 1024 * 1024


def test_tarball_holds_every_product_file(collection_tarball):
    """Every file git tracks (or would track) under plugins/, roles/, playbooks/, meta/ ships."""
    try:
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "--"] + list(PRODUCT_DIRS),
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True)
    except (OSError, subprocess.CalledProcessError):
        import pytest

        pytest.skip("not a git checkout")
    wanted = {
        name for name in listed.stdout.decode().splitlines()
        if os.path.isfile(os.path.join(ROOT, name)) and not name.endswith(".pyc") and "__pycache__" not in name
    }
    missing = sorted(wanted - set(members(collection_tarball)))
    assert not missing, "product files missing from the tarball: {0}".format(missing)


def installed_env(sandbox, home, collections):
    """A user's shell: their ansible.cfg and ANSIBLE_COLLECTIONS_PATH name the install, nothing else."""
    env = user_env(home, sandbox_aws_env(sandbox))
    env["ANSIBLE_CONFIG"] = write_ansible_cfg(home, str(collections))
    env["ANSIBLE_COLLECTIONS_PATH"] = str(collections)
    return env


def test_installed_collection_is_the_only_one_seen(installed_collections, sandbox, tmp_path):
    env = installed_env(sandbox, str(tmp_path), installed_collections)
    result = run([os.path.join(BIN, "ansible-galaxy"), "collection", "list", "--format", "json"],
                 env, str(tmp_path), "installed-collection-list")
    assert result.returncode == 0, result.output
    found = json.loads(result.output[result.output.index("{"):])
    keyless = {path: cols["keyless.aws"] for path, cols in found.items() if "keyless.aws" in cols}
    amazon = {path: cols["amazon.aws"] for path, cols in found.items() if "amazon.aws" in cols}
    expected = str(installed_collections / "ansible_collections")
    assert list(keyless) == [expected], "keyless.aws must come from the install only: {0}".format(keyless)
    assert keyless[expected]["version"] == galaxy_version()
    assert amazon, "amazon.aws is not visible beside the installed collection"
    assert all(not path.startswith(ROOT) or ".venv" in path or "matrix" in path for path in found), found


def test_smoke_playbook_from_the_installed_copy(installed_collections, sandbox, tmp_path):
    env = installed_env(sandbox, str(tmp_path), installed_collections)
    doc = run([os.path.join(BIN, "ansible-doc"), "keyless.aws.iam_instance_profile"], env, str(tmp_path), "installed-ansible-doc")
    assert doc.returncode == 0, doc.output
    assert str(installed_collections) in doc.output, doc.output[:500]
    run_smoke(sandbox, env, str(tmp_path), "installed-smoke")


def test_collection_playbook_by_fqcn_from_the_installed_copy(installed_collections, sandbox, tmp_path):
    """playbooks/provision.yml ships in the collection and runs as keyless.aws.provision."""
    env = installed_env(sandbox, str(tmp_path), installed_collections)
    result = run(playbook_args("keyless.aws.provision", "-e", "keyless_role_name=keyless-installed"),
                 env, str(tmp_path), "installed-provision")
    assert result.returncode == 0, "keyless.aws.provision failed (log {0}):\n{1}".format(
        result.log_path, result.output[-5000:])
    iam = sandbox.client("iam")
    profile = iam.get_instance_profile(InstanceProfileName="keyless-installed")["InstanceProfile"]
    assert [role["RoleName"] for role in profile["Roles"]] == ["keyless-installed"]
