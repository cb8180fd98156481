#!/usr/bin/env python3
"""Reports import cycles between the files of each crate's src/.

A file imports another when it names it through `crate::a::...` (in a `use` or inline) or
`super::...`, or a submodule through `child::...`. The crate root (lib.rs / main.rs) is left out: it declares and re-exports the
modules, so every file naming a root item would otherwise close a cycle through it. `mod x;`
declarations are not imports. Inside an inline `mod name { ... }` (tests), `super::` means the
file itself. Exits 1 if any crate has a cycle. `--crate NAME` checks one crate's directory.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATH = re.compile(r"\b(crate|self|super)((?:::super)*)::")
INLINE_MOD = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{", re.M)
CHILD = re.compile(r"(?<![:\w])([a-z_]\w*)::")


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    return re.sub(r"//[^\n]*", "", text)


def modules(src):
    """Module path (tuple) -> file, for every .rs file under src."""
    out = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), src)
            parts = rel[:-3].split(os.sep)
            if parts[-1] == "mod" or (len(parts) == 1 and parts[0] in ("lib", "main")):
                parts = parts[:-1]
            out[tuple(parts)] = rel
    return out


def heads(text, pos):
    """The first segment of each path after `::` at pos (several for a `{...}` group)."""
    if pos < len(text) and text[pos] == "{":
        depth, start, items = 0, pos + 1, []
        for i in range(pos, len(text)):
            c = text[i]
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    items.append(text[start:i])
                    break
            elif c == "," and depth == 1:
                items.append(text[start:i])
                start = i + 1
        return [re.findall(r"[A-Za-z_]\w*(?:::[A-Za-z_]\w*)*", it)[:1] for it in items]
    m = re.match(r"[A-Za-z_]\w*(?:::[A-Za-z_]\w*)*", text[pos:])
    return [[m.group(0)]] if m else []


def resolve(mods, base, path):
    cur = tuple(base)
    for seg in path.split("::"):
        if cur + (seg,) in mods:
            cur = cur + (seg,)
        else:
            break
    return cur


def graph(src):
    mods = modules(src)
    edges = {m: set() for m in mods if m}
    for mod, rel in mods.items():
        if not mod:
            continue
        text = strip_comments(open(os.path.join(src, rel), encoding="utf-8").read())
        first_inline = INLINE_MOD.search(text)
        inline_at = first_inline.start() if first_inline else None
        for m in PATH.finditer(text):
            kind, supers = m.group(1), m.group(2).count("super")
            if kind == "crate":
                base = ()
            else:
                up = (supers + 1 if kind == "super" else 0)
                if inline_at is not None and m.start() > inline_at:
                    up -= 1
                if up > len(mod):
                    continue
                base = mod[: len(mod) - up]
            for h in heads(text, m.end()):
                target = resolve(mods, base, h[0]) if h else base
                if target and target != mod:
                    edges[mod].add(target)
        # Paths relative to this file: `child::...` names a submodule.
        for m in CHILD.finditer(text):
            child = mod + (m.group(1),)
            if child in mods:
                edges[mod].add(resolve(mods, mod, text[m.start():].split("::", 1)[0]))
    return mods, edges


def cycles(edges):
    """Strongly connected components with more than one file (Tarjan)."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def crates(only):
    for dirpath, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in ("target", ".git") and not d.startswith(".")]
        if "Cargo.toml" in files and os.path.isdir(os.path.join(dirpath, "src")):
            name = os.path.relpath(dirpath, ROOT)
            if only is None or name == only or os.path.basename(dirpath) == only:
                yield name, os.path.join(dirpath, "src")


def main():
    args = sys.argv[1:]
    only = None
    if args[:1] == ["--crate"] and len(args) == 2:
        only = args[1]
    elif args:
        sys.exit("usage: module-cycles.py [--crate NAME]")
    found, seen = False, False
    for name, src in sorted(crates(only)):
        seen = True
        mods, edges = graph(src)
        for comp in cycles(edges):
            found = True
            files = [mods[m] for m in comp]
            print(f"{name}: cycle between {', '.join(files)}")
            for m in comp:
                for t in sorted(edges[m] & set(comp)):
                    print(f"    {mods[m]} -> {mods[t]}")
    if not seen:
        sys.exit(f"no crate {only!r}")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
