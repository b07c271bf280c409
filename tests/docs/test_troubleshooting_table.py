"""The troubleshooting table of docs/troubleshooting.md quotes what the modules say.

Every table of that page whose header is ``| Symptom | Exact message | What to do |`` quotes, in
its second column and in backticks, one message of the modules. Each must still be in the code
under plugins/: a string literal of a .py file, word for word, where the literal's ``{...}``
placeholders stand for the values of the example (an instance id, a profile name) and ``...`` in
the quote stands for text left out (the rest of a long message, or what AWS said). A placeholder
stands for a short value (VALUE characters at most), or for a sentence another literal says in
full (messages put together from two literals). A message reworded in the code without the
page, or the other way round, fails here; so does a table row without a quoted message. (The longer messages the page quotes in ``text message`` blocks are
provoked against the sandbox by test_troubleshooting_messages.py.)
"""

import ast
import os
import string

import pytest

from quoted import ROOT
from quoted import table_rows

PAGE = os.path.join(ROOT, "docs", "troubleshooting.md")
PLUGINS = os.path.join(ROOT, "plugins")
ELLIPSIS = "..."
WILD = None  # a placeholder: any text, possibly empty
MIN_LITERAL = 15  # characters of a fragment that must come from the literal text, not placeholders
VALUE = 50  # the longest value a placeholder stands for (an instance profile ARN is about 50 characters)
WINDOW = 12


def tokens_of(text):
    """A string literal as tokens: its characters, and WILD for each ``{...}`` placeholder."""
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError:  # not a format string: literal text
        return list(text)
    tokens = []
    for literal, field, _spec, _conversion in parts:
        tokens.extend(literal)
        if field is not None:
            tokens.append(WILD)
    return tokens


class Code:
    """Every string literal of every .py file under ``root``, as tokens (f-strings too), with an
    index of their literal text by WINDOW-character slices to find candidates fast."""

    def __init__(self, root=PLUGINS):
        self.literals = []
        for folder, _dirs, files in os.walk(root):
            for name in sorted(files):
                if name.endswith(".py"):
                    with open(os.path.join(folder, name)) as handle:
                        self._collect(ast.parse(handle.read()))
        self.index = {}
        for number, tokens in enumerate(self.literals):
            text = "".join("\0" if token is WILD else token for token in tokens)
            for piece in slices(text):
                self.index.setdefault(piece, set()).add(number)
        self.cache = {}

    def _collect(self, tree):
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):
                tokens = []
                for value in node.values:
                    if isinstance(value, ast.Constant) and isinstance(value.value, str):
                        tokens.extend(value.value)
                    else:
                        tokens.append(WILD)
                self.literals.append(tokens)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) >= WINDOW:
                self.literals.append(tokens_of(node.value))

    def says(self, fragment, cut_start=False, cut_end=False, depth=0):
        """Whether a literal, its placeholders filled in, reads ``fragment`` (cut at the start or
        the end where the quote left text out), with at least MIN_LITERAL characters of its own."""
        key = (fragment, cut_start, cut_end, depth)
        if key not in self.cache:
            candidates = set()
            for piece in slices(fragment):
                candidates.update(self.index.get(piece, ()))
            self.cache[key] = any(
                (score or -1) >= min(MIN_LITERAL, len(fragment))
                for score in (said(fragment, self.literals[number], cut_start, cut_end, self, depth)
                              for number in sorted(candidates)))
        return self.cache[key]


def slices(text):
    return set(text[start:start + WINDOW] for start in range(max(1, len(text) - WINDOW + 1)))


def said(fragment, tokens, cut_start, cut_end, code, depth=0):
    """The most characters of ``fragment`` that come from the literal text of ``tokens``, when
    some rendering of ``tokens`` (placeholders filled in) is ``fragment``; None when none is.

    With ``cut_start`` / ``cut_end`` the rendering may be cut there (the quote left out the rest),
    but only next to literal text: a placeholder cannot swallow the start or the end of a quote,
    unless what it swallows is the start of another literal (a sentence put into this one). A
    placeholder stands for a value (a name, an id, an ARN) of at most VALUE characters, or for a
    longer part another literal says in full."""
    n, m = len(tokens), len(fragment)
    # best[j][i]: most literal characters matched with fragment[:j] consumed and tokens[:i] used
    best = [dict() for dummy in range(m + 1)]
    cut_by_part = set()  # end states whose placeholder took the end of the quote, said by another literal
    for i in (range(n) if cut_start else (0,)):
        if not cut_start or tokens[i] is not WILD:
            best[0][i] = 0
    for j in range(m + 1):
        pending = sorted(best[j])
        while pending:
            i = pending.pop(0)
            score = best[j][i]
            if i == n:
                continue
            token = tokens[i]
            if token is not WILD:
                if j < m and token == fragment[j] and best[j + 1].get(i + 1, -1) < score + 1:
                    best[j + 1][i + 1] = score + 1
                continue
            if cut_end and depth == 0 and i + 1 < n and j < m and code.says(fragment[j:], cut_end=True, depth=1):
                best[m][i + 1] = max(best[m].get(i + 1, -1), score)
                cut_by_part.add(i + 1)
            for k in range(j, m + 1):
                if k - j > VALUE:
                    # a longer part: only where the literal after the placeholder goes on
                    fits = k == m if i + 1 == n else (
                        tokens[i + 1] is not WILD and k < m and fragment[k] == tokens[i + 1])
                    if depth >= 1 or not fits or not code.says(fragment[j:k], depth=1):
                        continue
                if best[k].get(i + 1, -1) < score:
                    best[k][i + 1] = score
                    if k == j:
                        pending.append(i + 1)
    ends = [score for i, score in best[m].items()
            if i == n or (cut_end and i > 0 and (tokens[i - 1] is not WILD or i in cut_by_part))]
    return max(ends) if ends else None


def check(message, code):
    """The fragments of ``message`` (split at ``...``) the code does not say."""
    pieces = message.split(ELLIPSIS)
    missing = []
    for index, piece in enumerate(pieces):
        if not piece.strip():
            continue
        if index > 0:
            piece = piece.lstrip()
        if index < len(pieces) - 1:
            piece = piece.rstrip()
        if not code.says(piece, cut_start=index > 0, cut_end=index < len(pieces) - 1):
            missing.append(piece)
    return missing


@pytest.fixture(scope="module")
def code_strings():
    return Code()


def test_the_table_is_there():
    with open(PAGE) as handle:
        rows = table_rows(handle.read())
    assert len(rows) >= 20
    assert len(set(message for _line, _symptom, message in rows)) == len(rows), "a message is quoted twice"


def test_the_checker_can_fail(code_strings):
    real = ("instance_profile: 'web-app-role' is an IAM role, not an instance profile. EC2 attaches instance "
            "profiles, which hold a role; ...")
    assert check(real, code_strings) == []
    assert check(real.replace("is an IAM role", "is a role"), code_strings)
    assert check("no instance metadata service answered at http://169.254.169.254 within 120s (...): is this an "
                 "EC2 instance, and is the endpoint right?", code_strings) == []
    assert check("no instance metadata service answered at http://169.254.169.254 within 120s: is this an "
                 "EC2 instance, and is the endpoint right?", code_strings)
    # A literal with little text of its own ("{0} {1}") does not vouch for anything.
    assert check("any two words", code_strings)
    # A sentence put into another one's placeholder (the hint of the role-for-profile message)
    # must be said by a literal of its own, word for word.
    assert check(real[:-4] + " the profile(s) that hold it: web-app; use one of those.", code_strings) == []
    assert check(real[:-4] + " the profiles that hold it: web-app; use one of those.", code_strings)
    # A quote cut where a placeholder is: only where another literal says what follows.
    assert check("instance i-0123456789abcdef0 gets no credentials: EC2 cannot assume the role lambda-only (Code "
                 "AssumeRoleUnauthorizedAccess in iam/security-credentials/lambda-only). The role's trust policy must "
                 "let EC2 assume the role: ...", code_strings) == []
    assert check("instance i-0123456789abcdef0 gets no credentials: EC2 cannot assume the role lambda-only (Code "
                 "AssumeRoleUnauthorizedAccess in iam/security-credentials/lambda-only). The role's trust policy must "
                 "allow EC2 to assume it: ...", code_strings)


def test_every_quoted_message_is_in_the_code(code_strings):
    with open(PAGE) as handle:
        rows = table_rows(handle.read())
    wrong = []
    for line, symptom, message in rows:
        missing = check(message, code_strings)
        if missing:
            wrong.append("docs/troubleshooting.md:{0} ({1}): not in plugins/: {2}".format(
                line, symptom, " | ".join(repr(piece) for piece in missing)))
    assert not wrong, "\n".join(wrong)
