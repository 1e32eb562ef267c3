#!/usr/bin/env python3
"""Fail when two sibling modules of a crate import each other, directly or around a ring.

For every crate under the workspace, each `.rs` file is a module (`a/b.rs` and `a/b/mod.rs` are `a::b`). Every
`crate::…`, `super::…` and `self::…` path is resolved to the deepest module it names; an edge between two modules
is lifted to the pair of siblings under their common parent (`pipeline::components` → `pipeline::preview`), and a
cycle among siblings fails the check. A child naming its parent (`use super::*` in tests) is not a cycle.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PATH = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
GROUP = re.compile(r"\b(crate|super|self)::\{([^}]*)\}")


def module_of(src, file):
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def strip(text):
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text)


def references(text):
    for m in PATH.finditer(text):
        yield m.group(1), m.group(2).split("::")[1:]
    for m in GROUP.finditer(text):
        for item in m.group(2).split(","):
            head = item.strip().split("::")
            if head and head[0] and head[0] not in ("self", "*"):
                yield m.group(1), head


def resolve(base, kind, names, modules):
    if kind == "crate":
        path = []
    elif kind == "super":
        path = list(base[:-1])
        while names and names[0] == "super":
            path, names = path[:-1], names[1:]
    else:
        path = list(base)
    best = tuple(path)
    for n in names:
        path.append(n)
        if tuple(path) in modules:
            best = tuple(path)
        else:
            break
    return best


def lift(a, b):
    """The sibling pair under a's and b's common parent, or None when one contains the other."""
    i = 0
    while i < len(a) and i < len(b) and a[i] == b[i]:
        i += 1
    if i == len(a) or i == len(b):
        return None
    return a[: i + 1], b[: i + 1]


def cycles(edges):
    graph = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    found, state = [], {}

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return found


def main():
    bad = 0
    for manifest in sorted(ROOT.glob("*/Cargo.toml")):
        src = manifest.parent / "src"
        if not src.is_dir():
            continue
        files = sorted(src.rglob("*.rs"))
        modules = {module_of(src, f) for f in files}
        edges = set()
        for f in files:
            base = module_of(src, f)
            for kind, names in references(strip(f.read_text())):
                pair = lift(base, resolve(base, kind, names, modules))
                if pair:
                    edges.add(pair)
        for ring in cycles(edges):
            bad += 1
            print(f"{manifest.parent.name}: import cycle " + " -> ".join("::".join(m) for m in ring))
    if bad:
        sys.exit(1)
    print("no module import cycles")


if __name__ == "__main__":
    main()
