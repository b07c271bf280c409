"""docs/index.md is the guide's table of contents: it links every page of docs/, and every link
between the guide's pages (and the anchors they name) leads somewhere."""

import os
import re

from runner import ROOT

DOCS = os.path.join(ROOT, "docs")
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,3} (.+?)\s*$", re.M)
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def pages():
    return sorted(name for name in os.listdir(DOCS) if name.endswith(".md"))


def read(name):
    with open(os.path.join(DOCS, name)) as handle:
        return handle.read()


def slug(heading):
    """The anchor GitHub and MyST (myst_heading_anchors) give a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(name):
    return set(slug(heading.replace("`", "")) for heading in HEADING.findall(FENCE.sub("", read(name))))


def test_the_index_links_every_page():
    linked = set(target.split("#")[0] for target in LINK.findall(read("index.md")))
    assert set(pages()) - {"index.md"} <= linked, set(pages()) - {"index.md"} - linked


def test_links_between_pages_lead_somewhere():
    broken = []
    for name in pages():
        for target in LINK.findall(FENCE.sub("", read(name))):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            path, _hash, anchor = target.partition("#")
            resolved = os.path.normpath(os.path.join(DOCS, path)) if path else os.path.join(DOCS, name)
            if not os.path.exists(resolved):
                broken.append("{0}: {1} (no such file)".format(name, target))
            elif anchor and resolved.endswith(".md") and os.path.dirname(resolved) == DOCS:
                if anchor not in anchors(os.path.basename(resolved)):
                    broken.append("{0}: {1} (no such heading)".format(name, target))
    assert not broken, "\n".join(broken)


def test_the_site_lists_every_page_in_the_same_order():
    """docs/site/index.rst (the HTML site's user guide) lists the pages in the index's order."""
    with open(os.path.join(DOCS, "site", "index.rst")) as handle:
        listed = re.findall(r"^   docs/([\w-]+)$", handle.read(), re.M)
    assert sorted(listed) == sorted(name[:-3] for name in pages())
    order = []
    for target in LINK.findall(read("index.md")):
        name = target.split("#")[0][:-3]
        if target.split("#")[0].endswith(".md") and "/" not in target and name not in order:
            order.append(name)
    assert listed == ["index"] + [name for name in order if name in listed], (listed, order)
