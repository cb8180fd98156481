#!/usr/bin/env python3
"""What a running Feige server writes to its WAL: the frames since the WAL's last restart, by
the table or index that owns each page.

    kill -STOP $PID; cp DATA/feige.db /tmp/db; cp DATA/feige.db-wal /tmp/wal; kill -CONT $PID
    benches/scripts/wal-mix.py /tmp/db /tmp/wal

Copy both files while the server is stopped, so that they agree. Pages are mapped to their
owner with SQLite's `dbstat` (Debian's python3 has it) on the database file alone: a page the
WAL holds that is past the file's end is counted as "(new page)". Prints the frame and commit
counts and the share of frames per owner.
"""
import collections
import shutil
import sqlite3
import struct
import sys
import tempfile


def frames(wal_path):
    """Page numbers of the WAL's valid frames, and how many of them end a commit."""
    with open(wal_path, "rb") as f:
        wal = f.read()
    if len(wal) < 32:
        return [], 0, 0
    _magic, _ver, page_size, _seq, salt1, salt2, _c1, _c2 = struct.unpack(">8I", wal[:32])
    pages, commits, off = [], 0, 32
    while off + 24 + page_size <= len(wal):
        page, db_size, s1, s2 = struct.unpack(">4I", wal[off:off + 16])
        # Frames left from before the last restart carry the old salts.
        if (s1, s2) != (salt1, salt2):
            break
        pages.append(page)
        commits += db_size != 0
        off += 24 + page_size
    return pages, commits, page_size


def owners(db_path):
    """Page number -> name of the table or index that owns it."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = f"{tmp}/db"
        shutil.copy(db_path, copy)
        conn = sqlite3.connect(copy)
        try:
            return dict((p, n) for n, p in conn.execute("SELECT name, pageno FROM dbstat"))
        finally:
            conn.close()


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    pages, commits, page_size = frames(sys.argv[2])
    if not pages:
        sys.exit("no valid frames in the WAL")
    names = owners(sys.argv[1])
    print(f"frames {len(pages)}, commits {commits}, page size {page_size}, "
          f"frames per commit {len(pages) / max(commits, 1):.1f}, "
          f"distinct pages {len(set(pages))}")
    counts = collections.Counter(names.get(p, "(new page)") for p in pages)
    for name, n in counts.most_common():
        print(f"{n:9d} {100 * n / len(pages):5.1f} %  {name}")


if __name__ == "__main__":
    main()
