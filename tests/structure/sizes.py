#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Fail when a C file outside tests/ is over 900 lines or a function in one is over 80.

A function is what clang-format leaves at column 0: a line that opens a definition ("...) {") and
the matching "}" at column 0. Lines are counted from the signature to the closing brace. Usage:
sizes.py SOURCE_DIR [--report]; --report lists the longest ones even when all pass."""
import os
import re
import sys

MAX_FILE_LINES = 900
MAX_FUNCTION_LINES = 80
DIRS = ("common", "config", "daemon", "ctl", "bench")
START = re.compile(r"^[A-Za-z_].*\)\s*(__attribute__\(\(.*\)\)\s*)?\{\s*$")


def functions(lines):
    start = None
    name = None
    for i, line in enumerate(lines):
        if start is None:
            if START.match(line) and not line.startswith(("struct ", "typedef ", "enum ", "union ")):
                # the signature may begin on an earlier line (wrapped parameters)
                j = i
                while j > 0 and lines[j - 1].strip() and not lines[j - 1].rstrip().endswith((";", "}", "*/")) \
                        and not lines[j - 1].startswith(("#", "/*", " *")) and lines[j - 1][:1] in (" ", "\t"):
                    j -= 1
                start = j
                m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", lines[j] if lines[j][:1] not in " \t" else line)
                name = m.group(1) if m else "?"
        elif line.startswith("}"):
            yield name, start + 1, i - start + 1
            start = None


def main():
    root = sys.argv[1]
    report = "--report" in sys.argv
    bad = []
    rows = []
    for d in DIRS:
        for dirpath, _, files in os.walk(os.path.join(root, d)):
            for f in sorted(files):
                if not f.endswith((".c", ".h")):
                    continue
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, root)
                with open(path, encoding="utf-8", errors="replace") as fh:
                    lines = fh.read().split("\n")
                n = len(lines) - 1 if lines and lines[-1] == "" else len(lines)
                if n > MAX_FILE_LINES:
                    bad.append(f"{rel}: {n} lines (at most {MAX_FILE_LINES})")
                for name, line, length in functions(lines):
                    rows.append((length, f"{rel}:{line}: {name}()"))
                    if length > MAX_FUNCTION_LINES:
                        bad.append(f"{rel}:{line}: {name}() is {length} lines (at most {MAX_FUNCTION_LINES})")
    if report:
        for length, where in sorted(rows, reverse=True)[:15]:
            print(f"{length:4d} {where}")
    for b in bad:
        print(b)
    if bad:
        print(f"{len(bad)} over the limits", file=sys.stderr)
        return 1
    print("sizes: every file within %d lines, every function within %d" % (MAX_FILE_LINES, MAX_FUNCTION_LINES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
