#!/usr/bin/env python3
"""The release x backend x import order table from moe_layer_check.py's JSON files.

    python3 python/tests/megatron/summary.py OUT_DIR > table.md

One row per (release, backend, import order, ranks): how many cases passed, and the largest
error of any tensor in any case as a fraction of its tolerance (see moe_layer_check.py). A run
whose JSON is missing (it crashed before writing it) is listed as failed with its log's name.
"""
import glob
import json
import os
import sys
from collections import OrderedDict


def version_key(text):
    return tuple(int(part) for part in text.split("."))


def main(folder):
    rows = OrderedDict()
    missing = []
    for log in sorted(glob.glob(os.path.join(folder, "*.log"))):
        if not os.path.exists(log[:-4] + ".json"):
            missing.append(os.path.basename(log))
    records = []
    for path in glob.glob(os.path.join(folder, "*.json")):
        with open(path) as handle:
            records += json.load(handle)
    records.sort(key=lambda r: (version_key(r["release"]), r["backend"], r["order"], r["ranks"]))
    for record in records:
        key = (record["release"], record["backend"], record["order"], record["ranks"])
        row = rows.setdefault(key, dict(cases=0, passed=0, ratio=0.0, failed=[]))
        row["cases"] += 1
        if record["ok"]:
            row["passed"] += 1
            row["ratio"] = max(row["ratio"], record.get("error_over_tolerance") or 0.0)
        else:
            row["failed"].append("%s (%s)" % (record["case"], record["detail"][:120]))
    print("| Megatron-Core | backend | install() | ranks | cases passed | max error / tolerance | failures |")
    print("|---|---|---|---:|---:|---:|---|")
    for (release, backend, order, ranks), row in rows.items():
        print("| %s | %s | %s import | %d | %d/%d | %.3f | %s |" % (
            release, backend, order, ranks, row["passed"], row["cases"], row["ratio"],
            "; ".join(row["failed"]) or "-"))
    for log in missing:
        print("| %s | - | - | - | run failed before writing results | - | see %s |"
              % (log[:-4], log))
    return 1 if missing or any(row["failed"] for row in rows.values()) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
