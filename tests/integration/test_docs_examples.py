"""Every playbook in docs/*.md runs as written against the sandbox.

A fenced block whose info string is ``yaml playbook`` is a whole playbook. The blocks of one
page run in order against one sandbox (a page tells a story: later blocks use what earlier
ones made), each as its own ansible-playbook run. Other fenced blocks are prose.
"""

import os
import re

import pytest

from runner import ROOT, run_playbook

DOCS = os.path.join(ROOT, "docs")
BLOCK = re.compile(r"^```yaml playbook[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)


def pages():
    found = []
    for folder, _dirs, files in os.walk(DOCS):
        if "_build" in folder:
            continue
        for name in sorted(files):
            if name.endswith(".md"):
                path = os.path.join(folder, name)
                with open(path) as handle:
                    if BLOCK.search(handle.read()):
                        found.append(os.path.relpath(path, DOCS))
    return sorted(found)


def test_docs_have_runnable_examples():
    assert "roles-and-profiles.md" in pages()


@pytest.mark.parametrize("page", pages())
def test_page_examples_run(page, sandbox, tmp_path):
    with open(os.path.join(DOCS, page)) as handle:
        blocks = BLOCK.findall(handle.read())
    for number, block in enumerate(blocks, 1):
        playbook = tmp_path / "example-{0}.yml".format(number)
        playbook.write_text(block)
        name = "docs-{0}-{1}".format(page.replace("/", "-")[:-3], number)
        run = run_playbook(sandbox, str(playbook), name=name)
        assert run.returncode == 0, "{0}, example {1} failed:\n{2}\n---\n{3}".format(
            page, number, block, run.output[-4000:])
