#!/usr/bin/env python3
"""Checks deploy/monitoring: the Grafana dashboard is valid JSON with unique panel ids and
titles, every panel has a Prometheus query, and every metric the dashboard and the alert rules
name is one the services export (found in their sources) or a standard process_* metric."""
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROCESS = {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
           "process_max_fds", "process_start_time_seconds", "process_threads",
           "process_virtual_memory_bytes"}
SUFFIXES = ("_bucket", "_sum", "_count")


def exported():
    names = set(PROCESS)
    for crate in ("proxy", "origin", "transcoder", "telemetry", "entitlements"):
        for f in (ROOT / crate / "src").rglob("*.rs"):
            names.update(re.findall(r'"(streamgate_[a-z0-9_]+)"', f.read_text()))
    return names


def used(expr):
    return {m for m in re.findall(r"\b((?:streamgate|process)_[a-z0-9_]+)", expr)}


def base(name):
    for s in SUFFIXES:
        if name.endswith(s):
            return name[: -len(s)]
    return name


def main(path):
    known = exported()
    dash = json.loads(pathlib.Path(path).read_text())
    errors = []
    ids, titles = set(), set()
    exprs = []
    for p in dash["panels"]:
        if p["id"] in ids or p["title"] in titles:
            errors.append(f"duplicate panel {p['id']} {p['title']!r}")
        ids.add(p["id"])
        titles.add(p["title"])
        if not p.get("targets"):
            errors.append(f"panel {p['title']!r} has no query")
        exprs += [t["expr"] for t in p.get("targets", [])]
    rules = (ROOT / "deploy/monitoring/alerts.yaml").read_text()
    exprs += re.findall(r"expr: ([^\n|]+)", rules)
    exprs += re.findall(r"expr: \|\n((?:\s{10,}.*\n)+)", rules)
    for e in exprs:
        for m in used(e):
            if m not in known and base(m) not in known:
                errors.append(f"unknown metric {m} in {e.strip()!r}")
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1
    print(f"dashboard-check: {len(dash['panels'])} panels, {len(exprs)} queries ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
