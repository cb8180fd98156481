#!/usr/bin/env python3
"""Fails when a hand-written Rust source file is longer than the limit (default 600 lines).

Test files are left out: integration tests (a crate's tests/ directory and the tests crate),
files named tests.rs or *_tests.rs, and the fuzz harness. Generated code lives in OUT_DIR, not
in the tree, so it is never seen. `--limit N` changes the limit. Exits 1 on any file over it.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP_DIRS = {"target", ".git", "node_modules"}


def is_test(rel):
    parts = rel.split(os.sep)
    name = parts[-1]
    if name == "tests.rs" or name.endswith("_tests.rs"):
        return True
    # The integration-test crate at the root, and each crate's own tests/ directory.
    return parts[0] == "tests" or "tests" in parts[:-1]


def main():
    limit = 600
    if len(sys.argv) == 3 and sys.argv[1] == "--limit":
        limit = int(sys.argv[2])
    over = []
    for dirpath, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, ROOT)
            if is_test(rel):
                continue
            with open(path, encoding="utf-8") as fh:
                n = sum(1 for _ in fh)
            if n > limit:
                over.append((n, rel))
    for n, rel in sorted(over, reverse=True):
        print(f"{rel}: {n} lines (limit {limit})")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
