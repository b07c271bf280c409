"""Another repository pins keyless.aws in its requirements.yml: from git, and from the tarball.

The other repository is a folder with a ``collections/requirements.yml`` and a playbook beside
it; ``ansible-galaxy collection install -r collections/requirements.yml -p collections`` puts
the collection in the playbook-adjacent ``collections/`` folder, which ansible-playbook (and
AWX, which installs the same file) finds without any setting. The git source is a local
repository reached with a ``git+file://`` URL, so nothing leaves the machine.
"""

import os
import shutil
import subprocess

import pytest

from packaging_support import BIN, ROOT, galaxy_version, run, run_smoke, sandbox_aws_env, user_env

GIT_REQUIREMENTS = """\
---
collections:
  - name: git+file://{url}
    type: git
    version: main
"""

TARBALL_REQUIREMENTS = """\
---
collections:
  - name: ./vendor/{tarball}
    type: file
"""


def git(*args, cwd):
    env = dict(os.environ, GIT_AUTHOR_NAME="keyless", GIT_AUTHOR_EMAIL="keyless@localhost",
               GIT_COMMITTER_NAME="keyless", GIT_COMMITTER_EMAIL="keyless@localhost")
    subprocess.run(["git", "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main"] + list(args),
                   cwd=cwd, env=env, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def upstream_repo(tmp_path_factory):
    """A git repository holding this checkout as it stands (tracked and new files, not ignored ones).

    A ``git clone`` of this checkout would carry only its last commit; the test must see the tree
    under test, so its files are committed to a fresh repository instead.
    """
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True)
    except subprocess.CalledProcessError:
        pytest.skip("not a git checkout")
    repo = tmp_path_factory.mktemp("upstream") / "keyless.aws"
    for name in listed.stdout.decode().split("\0"):
        source = os.path.join(ROOT, name)
        if name and os.path.isfile(source):
            target = repo / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, str(target))
    git("init", "--quiet", cwd=str(repo))
    git("checkout", "--quiet", "-B", "main", cwd=str(repo))
    git("add", "--all", cwd=str(repo))
    git("commit", "--quiet", "-m", "keyless.aws under test", cwd=str(repo))
    return repo


def install_requirements(consumer, env, name):
    result = run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--offline",
                  "-r", "collections/requirements.yml", "-p", "collections"], env, str(consumer), name)
    assert result.returncode == 0, "install failed (log {0}):\n{1}".format(result.log_path, result.output[-4000:])
    installed = consumer / "collections" / "ansible_collections" / "keyless" / "aws"
    assert (installed / "MANIFEST.json").is_file(), result.output
    assert "'amazon.aws:" in result.output and "already installed" in result.output, result.output
    return installed


def consumer_env(sandbox, home):
    # Collections only where the consumer has them (and site-packages for amazon.aws): an empty
    # ANSIBLE_COLLECTIONS_PATH keeps anything of this checkout's out.
    empty = os.path.join(home, "no-collections")
    os.makedirs(empty, exist_ok=True)
    return user_env(home, dict(sandbox_aws_env(sandbox), ANSIBLE_COLLECTIONS_PATH=empty))


def test_requirements_from_git_url(upstream_repo, sandbox, tmp_path):
    consumer = tmp_path / "site-repo"
    (consumer / "collections").mkdir(parents=True)
    (consumer / "collections" / "requirements.yml").write_text(GIT_REQUIREMENTS.format(url=upstream_repo))
    env = consumer_env(sandbox, str(tmp_path / "home"))
    installed = install_requirements(consumer, env, "git-install")
    # Built from the git source with galaxy.yml's build_ignore: no repository, no tooling.
    assert not (installed / ".git").exists()
    assert not (installed / "scripts").exists() and not (installed / "Makefile").exists()
    assert (installed / "playbooks" / "provision.yml").is_file()
    run_smoke(sandbox, env, str(consumer), "git-smoke")


def test_requirements_from_tarball(collection_tarball, sandbox, tmp_path):
    consumer = tmp_path / "site-repo"
    (consumer / "collections").mkdir(parents=True)
    (consumer / "vendor").mkdir()
    shutil.copy2(str(collection_tarball), str(consumer / "vendor"))
    (consumer / "collections" / "requirements.yml").write_text(
        TARBALL_REQUIREMENTS.format(tarball=collection_tarball.name))
    env = consumer_env(sandbox, str(tmp_path / "home"))
    installed = install_requirements(consumer, env, "tarball-install")
    assert '"version": "{0}"'.format(galaxy_version()) in (installed / "MANIFEST.json").read_text()
    run_smoke(sandbox, env, str(consumer), "tarball-smoke")
