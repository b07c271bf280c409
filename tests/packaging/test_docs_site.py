"""`make docs` (scripts/docs.sh): the HTML site from the plugins' own docs and the user guide."""

import glob
import os
import subprocess
import sys

import pytest

from packaging_support import ROOT

pytest.importorskip("sphinx_antsibull_ext", reason="antsibull-docs is in requirements-dev.txt, not in this venv")
pytest.importorskip("myst_parser", reason="myst-parser is in requirements-dev.txt, not in this venv")
if os.path.realpath(sys.prefix) != os.path.realpath(os.path.join(ROOT, ".venv")):
    pytest.skip("scripts/docs.sh builds with .venv", allow_module_level=True)


def test_docs_site_builds_offline(tmp_path):
    out = tmp_path / "docs"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["KEYLESS_DOCS_OUT"] = str(out)
    completed = subprocess.run(["bash", os.path.join(ROOT, "scripts", "docs.sh")], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600, check=False)
    output = completed.stdout.decode("utf-8", "replace")
    assert completed.returncode == 0, output[-5000:]
    html = out / "html"
    assert (html / "index.html").is_file()

    # Every module, documented filter and role has its reference page, built from its own docs.
    for path in glob.glob(os.path.join(ROOT, "plugins", "modules", "*.py")):
        name = os.path.basename(path)[:-3]
        if name.startswith("_") or name == "__init__":
            continue
        page = html / "collection" / (name + "_module.html")
        assert page.is_file(), "no reference page for module {0}".format(name)
        text = page.read_text()
        assert "keyless.aws.{0}".format(name) in text
        assert "Parameters" in text and "Examples" in text
    for path in glob.glob(os.path.join(ROOT, "plugins", "filter", "*.yml")):
        name = os.path.basename(path)[:-4]
        assert (html / "collection" / (name + "_filter.html")).is_file(), "no reference page for filter {0}".format(name)
    for spec in glob.glob(os.path.join(ROOT, "roles", "*", "meta", "argument_specs.yml")):
        name = os.path.basename(os.path.dirname(os.path.dirname(spec)))
        assert (html / "collection" / (name + "_role.html")).is_file(), "no reference page for role {0}".format(name)

    # The user guide and the README are part of the site, linked from the index.
    index = (html / "index.html").read_text()
    for path in glob.glob(os.path.join(ROOT, "docs", "*.md")):
        page = "docs/" + os.path.basename(path)[:-3] + ".html"
        assert (html / page).is_file(), "guide page {0} missing".format(page)
        assert page in index, "guide page {0} not in the index".format(page)
    assert (html / "README.html").is_file()
