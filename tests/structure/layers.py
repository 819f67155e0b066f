#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The daemon's layers, checked from its object files and sources (docs/ARCHITECTURE.md).

Usage: layers.py SOURCE_DIR OBJECT...   (the objects of the tcpedud-core library)

Fails when
  - a function defined in a higher layer is called (or any symbol of it used) from a lower one,
    read from `nm` of the objects: what each defines and what each leaves undefined;
  - files call each other in a circle, except inside one component (a server and its
    connections; control's files; the manager's files);
  - a daemon source includes the header of a higher layer;
  - a server type touches an fd or the event loop instead of the calls in server-type.h."""
import os
import re
import subprocess
import sys

# Lowest first. A module is a daemon/*.c file without its extension; headers share their module's layer.
LAYERS = [
    ("core", ["journal", "core", "passed-fds", "privileges", "kernel-bpf"]),
    ("conn", ["conn", "conn-close", "conn-connect", "conn-kernel", "conn-state", "conn-timer", "server"]),
    ("types", ["echo", "framed", "plugin", "enhanced", "chat", "session"]),
    ("control", ["control", "control-dispatch", "control-commands", "control-session", "control-json"]),
    ("manager", ["manager", "manager-reload", "manager-notify"]),
    ("main", ["main"]),
]
# Files allowed to call each other both ways: one component each.
COMPONENTS = [
    {"conn", "conn-close", "conn-connect", "conn-kernel", "conn-state", "conn-timer", "server"},
    {"control", "control-dispatch", "control-commands", "control-session", "control-json"},
    {"manager", "manager-reload", "manager-notify"},
]
# Headers that are not a module's: the data-model names, the private headers of a component.
HEADER_LAYER = {"tcpedud": "core", "conn-internal": "conn", "control-internal": "control", "control-dispatch": "control",
                "server-type": "conn"}
SERVER_TYPES = ["echo", "framed", "plugin", "enhanced", "chat", "session"]
TYPE_FORBIDDEN = [(re.compile(r"\bsd_event"), "the event loop (use conn_timer_*)"),
                  (re.compile(r"->fd\b"), "a connection's fd"),
                  (re.compile(r"\b(setsockopt|getsockopt|recv|send|shutdown|close)\s*\("), "a socket call")]

LAYER_OF = {m: i for i, (_, mods) in enumerate(LAYERS) for m in mods}
NAME = [n for n, _ in LAYERS]


def component(m):
    for i, c in enumerate(COMPONENTS):
        if m in c:
            return i
    return None


def nm(path):
    out = subprocess.run(["nm", path], check=True, capture_output=True, text=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            undefined.add(parts[1])
        elif len(parts) == 3 and parts[1] in "TDBRCG":
            defined.add(parts[2])
    return defined, undefined


def module_of_object(path):
    base = os.path.basename(path)
    return base[: -len(".c.o")] if base.endswith(".c.o") else os.path.splitext(base)[0]


def sccs(graph):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            out.append(comp)

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def main():
    src, objects = sys.argv[1], sys.argv[2:]
    errors = []
    defined_by, uses = {}, {}
    for obj in objects:
        m = module_of_object(obj)
        if m not in LAYER_OF:
            errors.append(f"{m}.c: not in any layer of tests/structure/layers.py (add it, and to docs/ARCHITECTURE.md)")
            continue
        d, u = nm(obj)
        for sym in d:
            defined_by[sym] = m
        uses[m] = u
    graph = {m: set() for m in uses}
    for m, undefined in uses.items():
        for sym in sorted(undefined):
            callee = defined_by.get(sym)
            if not callee or callee == m:
                continue
            graph[m].add(callee)
            if LAYER_OF[callee] > LAYER_OF[m]:
                errors.append(f"{m}.c ({NAME[LAYER_OF[m]]}) uses {sym}() of {callee}.c ({NAME[LAYER_OF[callee]]}): an upward call")
    for comp in sccs(graph):
        comps = {component(m) for m in comp}
        if len(comp) > 1 and (None in comps or len(comps) > 1):
            errors.append("a circle of calls: " + " -> ".join(sorted(comp)))

    daemon = os.path.join(src, "daemon")
    for f in sorted(os.listdir(daemon)):
        if not f.endswith(".c"):
            continue
        m = f[:-2]
        if m not in LAYER_OF:
            errors.append(f"daemon/{f}: not in any layer of tests/structure/layers.py")
            continue
        text = open(os.path.join(daemon, f), encoding="utf-8").read()
        for inc in re.findall(r'^#include "([^"]+)\.h"', text, re.M):
            layer = NAME.index(HEADER_LAYER[inc]) if inc in HEADER_LAYER else LAYER_OF.get(inc)
            if layer is None:
                continue
            if layer > LAYER_OF[m]:
                errors.append(f"daemon/{f} includes {inc}.h of a higher layer ({NAME[layer]})")
        if m in SERVER_TYPES:
            for n, line in enumerate(text.splitlines(), 1):
                code = line.split("//")[0]
                if code.lstrip().startswith(("*", "/*")):
                    continue
                for pat, what in TYPE_FORBIDDEN:
                    if pat.search(code):
                        errors.append(f"daemon/{f}:{n}: a server type touches {what}: {line.strip()}")
    for e in errors:
        print(e)
    if errors:
        print(f"{len(errors)} layer violations", file=sys.stderr)
        return 1
    print("layers: " + " < ".join(NAME) + f"; {len(uses)} objects, no upward call, no circle outside a component")
    return 0


if __name__ == "__main__":
    sys.exit(main())
