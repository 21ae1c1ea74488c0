#!/usr/bin/env python3
"""Where the heap is at its peak, by allocation site, from a heaptrack recording.

    heap_peak.py RECORDING.zst [--top N] [--json OUT]

heaptrack_print's "peak memory consumers" loses the inlined callers of Rust's async code (an
allocation in Pingora's proxy future shows as "poll<>"), so this reads the raw recording
instead: it replays every allocation and free, keeps the live bytes per allocation site at the
moment the total was highest, and names each site by its first frames (inlined ones included)
in this project's code or in the crates that hold connection state (pingora, tokio, bytes, h2).
Prints one line per site, largest first; --json writes the same as a list of
{"mib": ..., "site": [...frames]}.
"""

import argparse
import collections
import json
import subprocess
import sys

# Frames worth naming a site by: ours, and the crates whose state a connection holds.
INTERESTING = ("proxy/src", "pingora-", "tokio-1", "bytes-1", "h2-", "moka-", "http-1")


def read_recording(path):
    """Replays the recording; returns (peak bytes, live bytes per trace at the peak, frames of
    each trace)."""
    strings = [None]
    ips = [None]
    traces = [(0, 0)]
    infos = []  # allocation info: (size, trace)
    live = collections.Counter()  # per allocation info
    total = peak = 0
    at_peak = {}
    pending = False  # the running total is a new peak not yet snapshotted
    text = subprocess.run(["zstdcat", path], check=True, capture_output=True, text=True).stdout
    for line in text.splitlines():
        if not line:
            continue
        kind, rest = line[0], line[2:]
        if kind == "s":
            strings.append(rest.split(" ", 1)[1] if " " in rest else "")
        elif kind == "i":
            fields = rest.split()
            ips.append([int(x, 16) for x in fields[2:]])
        elif kind == "t":
            ip, parent = rest.split()
            traces.append((int(ip, 16), int(parent, 16)))
        elif kind == "a":
            size, trace = rest.split()
            infos.append((int(size, 16), int(trace, 16)))
        elif kind == "+":
            i = int(rest, 16)
            live[i] += infos[i][0]
            total += infos[i][0]
            if total > peak:
                peak, pending = total, True
        elif kind == "-":
            i = int(rest, 16)
            if pending and total == peak:
                at_peak, pending = dict(live), False
            live[i] -= infos[i][0]
            total -= infos[i][0]
    if pending:
        at_peak = dict(live)

    def frames(trace):
        out = []
        while trace:
            ip, trace = traces[trace]
            inlined = ips[ip]
            for k in range(0, len(inlined) - 2, 3):
                function = strings[inlined[k]] or "?"
                location = f"{strings[inlined[k + 1]]}:{inlined[k + 2]}"
                out.append((function, location))
        return out

    per_trace = collections.Counter()
    for info, size in at_peak.items():
        if size:
            per_trace[infos[info][1]] += size
    return peak, per_trace, frames


def site(frames, depth=4):
    """The first `depth` interesting frames, as "file:line"."""
    named = [loc.split("/registry/src/")[-1].split("/", 1)[-1] for _, loc in frames
             if any(mark in loc for mark in INTERESTING)]
    return tuple(named[:depth]) or tuple(loc for _, loc in frames[:depth])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recording")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--json")
    args = parser.parse_args()
    peak, per_trace, frames = read_recording(args.recording)
    sites = collections.Counter()
    for trace, size in per_trace.items():
        sites[site(frames(trace))] += size
    top = sites.most_common(args.top)
    print(f"peak heap: {peak / 2**20:.1f} MiB; largest sites live at the peak:")
    for where, size in top:
        print(f"{size / 2**20:8.2f} MiB  " + "  <-  ".join(where))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"peak_mib": peak / 2**20,
                       "sites": [{"mib": s / 2**20, "site": list(w)} for w, s in top]}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
