#!/usr/bin/env python3
"""Fails when a Rust function under the given directories is longer than the
limit (default 150 lines, issue 10's bound for ctdbd). Works on rustfmt'd code:
a function runs from its `fn` line to the first closing brace at the same
indentation."""
import pathlib
import re
import sys

LIMIT = 150
FN = re.compile(r"^(\s*)(pub(\([a-z]+\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?(extern\s+\"C\"\s+)?fn\s+(\w+)")


def long_functions(path):
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        m = FN.match(line)
        if not m or line.rstrip().endswith(";"):
            continue
        indent = m.group(1)
        for j in range(i + 1, len(lines)):
            if lines[j] == indent + "}":
                if j - i + 1 > LIMIT:
                    yield m.group(8), i + 1, j - i + 1
                break


def main():
    bad = 0
    for root in sys.argv[1:]:
        for path in sorted(pathlib.Path(root).rglob("*.rs")):
            for name, start, length in long_functions(path):
                print(f"{path}:{start}: fn {name} is {length} lines (limit {LIMIT})")
                bad += 1
    if bad:
        sys.exit(1)
    print(f"no function over {LIMIT} lines in {' '.join(sys.argv[1:])}")


main()
