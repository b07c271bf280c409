"""How the docs quote the modules' messages, read in one place for every docs-consistency test:

* ```` ```text message ```` blocks: a whole message, as a user sees it (the tests provoke each
  one and compare word for word);
* rows of ``| Symptom | Exact message | What to do |`` tables: one message per row, in backticks
  (the tests find each in the code's string literals).
"""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCS = os.path.join(ROOT, "docs")
MESSAGE_BLOCK = re.compile(r"^```text message[ \t]*\n(.*?)\n^```[ \t]*$", re.M | re.S)
TABLE_HEADER = re.compile(r"^\|\s*Symptom\s*\|\s*Exact message\s*\|\s*What to do\s*\|\s*$")


def page(name):
    with open(os.path.join(DOCS, name)) as handle:
        return handle.read()


def message_blocks(name):
    """The messages a page quotes in ```text message``` blocks, in page order."""
    return MESSAGE_BLOCK.findall(page(name))


def table_rows(text, where="docs/troubleshooting.md"):
    """(line number, symptom, message) for every row of every Symptom / Exact message table."""
    rows = []
    lines = text.splitlines()
    number = 0
    while number < len(lines):
        if TABLE_HEADER.match(lines[number]):
            number += 2  # the header and its |---| line
            while number < len(lines) and lines[number].startswith("|"):
                cells = [cell.strip() for cell in lines[number].strip().strip("|").split("|")]
                assert len(cells) == 3, "{0}:{1}: a row needs 3 cells".format(where, number + 1)
                quoted = re.findall(r"`([^`]+)`", cells[1])
                assert len(quoted) == 1, "{0}:{1}: quote exactly one message, in backticks".format(where, number + 1)
                rows.append((number + 1, cells[0], quoted[0]))
                number += 1
        number += 1
    return rows
