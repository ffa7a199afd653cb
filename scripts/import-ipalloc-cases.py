#!/usr/bin/env python3
"""Turns Samba's IP allocation unit cases (ctdb/tests/UNIT/takeover/*.sh at
samba-4.17.12) into a file our ipalloc tests read through IPALLOC_CASES.
Only the data is taken: node states,
tunables, the input layout and the expected allocation; log lines of the
expected output are dropped.

usage: scripts/import-ipalloc-cases.py [SAMBA_GIT_DIR] > FILE

The file is not kept in this repository; IPALLOC_CASES=FILE runs the ignored
ipalloc tests on it (scripts/test.sh does when SAMBA_REPO exists).
"""
import re
import subprocess
import sys

TAG = "samba-4.17.12"
DIR = "ctdb/tests/UNIT/takeover"


def git(repo, *args):
    return subprocess.run(["git", "-C", repo, *args], check=True,
                          capture_output=True, text=True).stdout


def heredocs(text):
    """Yields (command line, body) for each `... <<EOF` block, in order,
    and ('env', line) for exports between them."""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("export "):
            yield "env", line[len("export "):]
        if line.rstrip().endswith("<<EOF"):
            body = []
            i += 1
            while lines[i] != "EOF":
                body.append(lines[i])
                i += 1
            yield line[: -len("<<EOF")].strip(), body
        i += 1


def convert(name, text, out):
    algo = name.split(".")[0]
    title = re.search(r'define_test "([^"]*)"', text).group(1)
    env = {}
    expected = None
    previous = None
    step = 0
    for cmd, body in heredocs(text):
        if cmd == "env":
            k, v = body.split("=", 1)
            env[k] = v
            continue
        if cmd.startswith("required_result"):
            expected = [l for l in body if not l.startswith("${TEST_DATE_STAMP}")]
            continue
        assert cmd.startswith("simple_test"), cmd
        args = cmd.split()[1:]
        states = args[0]
        multi = len(args) > 1 and args[1] == "multi"
        layout = previous if body == ["$_out"] else body
        step += 1
        out.append(f"case {name}/{step} {algo} {states}" + (" multi" if multi else ""))
        out.append(f"# {title}")
        if "CTDB_SET_NoIPTakeover" in env:
            out.append(f"noiptakeover {env['CTDB_SET_NoIPTakeover']}")
        if "CTDB_TEST_RUNSTATE" in env:
            out.append(f"runstate {env['CTDB_TEST_RUNSTATE']}")
        out.append("input")
        out.extend(layout)
        out.append("expect")
        out.extend(expected)
        out.append("end")
        previous = expected


def main():
    repo = sys.argv[1] if len(sys.argv) > 1 else "/work/.mirror/samba-team+samba/repo"
    names = git(repo, "ls-tree", "--name-only", f"{TAG}:{DIR}/").split()
    out = [f"# IP allocation cases from Samba's {DIR} at {TAG} (data only),",
           "# made by scripts/import-ipalloc-cases.py; read by ipalloc/tests.rs."]
    for n in sorted(names):
        if n.endswith(".sh"):
            convert(n[:-3], git(repo, "show", f"{TAG}:{DIR}/{n}"), out)
    print("\n".join(out))


main()
