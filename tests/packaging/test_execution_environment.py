"""ansible-builder: the execution environment of this checkout, and what it would install.

No container engine is needed: ``ansible-builder create`` writes the build context (the
Containerfile and the files it copies), ``ansible-builder introspect`` computes the Python and
system requirements the build would install, from the collections in a folder.
"""

import os
import shutil

import pytest
import yaml

from packaging_support import BIN, ROOT, run, user_env

pytest.importorskip("ansible_builder", reason="ansible-builder is in requirements-dev.txt, not in this venv")


def builder():
    return os.path.join(BIN, "ansible-builder")


def test_builder_create_writes_the_build_context(collection_tarball, tmp_path):
    # The same layout as this checkout: the EE file at the root, the tarball in .build/dist/.
    project = tmp_path / "project"
    (project / ".build" / "dist").mkdir(parents=True)
    shutil.copy2(os.path.join(ROOT, "keyless-aws-ee.yml"), str(project))
    shutil.copy2(str(collection_tarball), str(project / ".build" / "dist"))
    context = tmp_path / "context"
    env = user_env(str(tmp_path / "home"))
    result = run([builder(), "create", "--file", "keyless-aws-ee.yml", "--context", str(context),
                  "--output-filename", "Containerfile", "-v", "3"], env, str(project), "ansible-builder-create")
    assert result.returncode == 0, result.output
    assert "Complete!" in result.output, result.output

    containerfile = (context / "Containerfile").read_text()
    assert "FROM $EE_BASE_IMAGE AS base" in containerfile
    assert "ansible-galaxy collection install" in containerfile
    assert "collections/keyless-aws-*.tar.gz" in containerfile
    # The galaxy stage's install precedes ours (amazon.aws first, so ours needs no Galaxy).
    assert containerfile.index("-r requirements.yml") < containerfile.index("collections/keyless-aws-*.tar.gz")
    # introspect runs at build time over the installed collections: ours and amazon.aws.
    assert "introspect.py introspect" in containerfile

    build = context / "_build"
    assert (build / "collections" / collection_tarball.name).is_file()
    galaxy = yaml.safe_load((build / "requirements.yml").read_text())
    assert {"name": "amazon.aws", "version": ">=9.0.0"} in galaxy["collections"]


@pytest.fixture
def introspect_tree(installed_collections, tmp_path):
    """Our installed collection with amazon.aws beside it, as an EE build lays them out."""
    import ansible_collections.amazon.aws as amazon

    tree = tmp_path / "collections"
    shutil.copytree(str(installed_collections / "ansible_collections" / "keyless"),
                    str(tree / "ansible_collections" / "keyless"), symlinks=True)
    (tree / "ansible_collections" / "amazon").mkdir()
    os.symlink(os.path.realpath(list(amazon.__path__)[0]), str(tree / "ansible_collections" / "amazon" / "aws"))
    return tree


def test_builder_introspect_merges_our_requirements_with_amazon_aws(introspect_tree, tmp_path):
    env = user_env(str(tmp_path / "home"))
    pip_out, bindep_out = tmp_path / "requirements.txt", tmp_path / "bindep.txt"
    result = run([builder(), "introspect", "--sanitize", str(introspect_tree),
                  "--write-pip", str(pip_out), "--write-bindep", str(bindep_out)],
                 env, str(tmp_path), "ansible-builder-introspect")
    assert result.returncode == 0, result.output
    report = yaml.safe_load(result.output[result.output.index("---"):])

    python = report["python"]
    for collection in ("keyless.aws", "amazon.aws"):
        for package in ("boto3", "botocore"):
            assert any(line.startswith(package + ">=") and line.endswith("from collection " + collection)
                       for line in python), "{0} of {1} missing: {2}".format(package, collection, python)
    # Ours: the system packages of bindep.txt, read through meta/execution-environment.yml.
    system = report["system"]
    assert any(line.startswith("python3 [platform:rpm]") and line.endswith("from collection keyless.aws")
               for line in system), system
    assert any(line.endswith("from collection amazon.aws") for line in system), system

    # The files an EE build installs from: one merged list of both collections.
    written = pip_out.read_text()
    assert "from collection keyless.aws" in written and "from collection amazon.aws" in written
    assert "from collection keyless.aws" in bindep_out.read_text()


def test_meta_execution_environment_names_files_that_exist():
    with open(os.path.join(ROOT, "meta", "execution-environment.yml")) as handle:
        meta = yaml.safe_load(handle)
    assert meta["version"] in (1, 3)
    deps = meta["dependencies"]
    assert set(deps) >= {"python", "system"}
    for key in ("python", "system"):
        assert os.path.isfile(os.path.join(ROOT, deps[key])), "meta/execution-environment.yml names a missing {0}".format(deps[key])
