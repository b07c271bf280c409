"""No two test files share a name: tests/ has no packages, so pytest imports each test file by
its base name, and a second file of the same name fails to import ("import file mismatch") in
whichever run collects both."""

import collections
import os

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_test_file_name_is_unique():
    places = collections.defaultdict(list)
    for folder, dirs, files in os.walk(TESTS):
        dirs[:] = [d for d in dirs if d not in ("output", "__pycache__")]
        for name in files:
            if name.startswith("test_") and name.endswith(".py"):
                places[name].append(os.path.relpath(os.path.join(folder, name), TESTS))
    assert dict((name, paths) for name, paths in places.items() if len(paths) > 1) == {}
