#!/usr/bin/env python3
"""Plot nccl-moe-perf --json results: GB/s per rank and latency against tokens per rank.

usage: plot.py RESULT.json [RESULT.json ...] [-o OUT.png] [--label NAME ...]

One line per measurement and file: nccl-moe dispatch and combine, and the baselines of the same
run, the NCCL all-to-all-v path (a2av) and the device-to-device copy roofline. GB/s is per rank,
as the table's algbw: the bytes a rank receives in dispatch (or sends back in combine) over the
slowest rank's time per call. The a2av baseline moves rows of the token type (bf16 or fp32, also
in FP8 runs); the copy roofline copies every rank's dispatch bytes on one GPU, shown per rank.
Older JSON files (before the size/algbw fields) plot the same: only the earlier fields are read.

Needs matplotlib (pip install matplotlib, or apt-get install python3-matplotlib); without it the
script says so and exits with status 3. Status 2: a bad argument or an unreadable file.
"""
import argparse
import json
import os
import sys

INSTALL_HINT = ("plot.py needs matplotlib: pip install matplotlib "
                "(or, on Debian/Ubuntu, apt-get install python3-matplotlib)")


def load(path):
    """The document of one --json file; ValueError naming the path if it is not one."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror}") from e
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not JSON: {e}") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("rows"), list) or "ranks" not in doc:
        raise ValueError(f"{path} is not an nccl-moe-perf --json file (no ranks and rows)")
    return doc


def _gbps(nbytes, us):
    return nbytes / us / 1e3 if nbytes and us else None


def series(doc):
    """{name: [(tokens, value), ...]} of one document, for the two panels.

    'gbps' names: dispatch, combine, a2av dispatch, a2av combine, copy roofline;
    'us' names: dispatch, combine, a2av dispatch, a2av combine. Points without a value are left out.
    """
    ranks = doc["ranks"]
    gbps = {k: [] for k in ("dispatch", "combine", "a2av dispatch", "a2av combine", "copy roofline")}
    us = {k: [] for k in ("dispatch", "combine", "a2av dispatch", "a2av combine")}
    for row in sorted(doc["rows"], key=lambda r: r["tokens"]):
        t = row["tokens"]
        dispatch_bytes = (row.get("dispatch_bytes") or 0) / ranks  # per rank
        token_bytes = (row.get("combine_bytes") or 0) / ranks      # the same rows in the token type
        points = {
            "dispatch": (dispatch_bytes, row.get("dispatch_us")),
            "combine": (token_bytes, row.get("combine_us")),
            "a2av dispatch": (token_bytes, row.get("a2av_dispatch_us")),
            "a2av combine": (token_bytes, row.get("a2av_combine_us")),
            "copy roofline": (dispatch_bytes, row.get("copy_us")),
        }
        for name, (nbytes, time) in points.items():
            value = _gbps(nbytes, time)
            if value is not None:
                gbps[name].append((t, value))
            if name in us and time:
                us[name].append((t, time))
    return {"gbps": gbps, "us": us}


def label_of(path, doc):
    """The file's name without .json, and what the run was."""
    name = os.path.splitext(os.path.basename(path))[0]
    what = [f"{doc['ranks']} ranks", doc.get("layout", "per-rank")]
    if doc.get("fp8"):
        what.append("fp8")
    if doc.get("zero_copy"):
        what.append("zero-copy")
    return f"{name} ({', '.join(what)})"


def plot(docs, labels, out):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(INSTALL_HINT, file=sys.stderr)
        return 3
    fig, (bw, lat) = plt.subplots(1, 2, figsize=(13, 5))
    # (line, marker): ours solid/dashed with dots, the a2av baseline dotted with squares, the roofline
    # a faint thick line with triangles.
    styles = {"dispatch": ("-", "o"), "combine": ("--", "o"), "a2av dispatch": (":", "s"),
              "a2av combine": ("-.", "s"), "copy roofline": ("-", "^")}
    for index, (doc, label) in enumerate(zip(docs, labels)):
        color = f"C{index % 10}"
        s = series(doc)
        for panel, key in ((bw, "gbps"), (lat, "us")):
            for name, points in s[key].items():
                if points:
                    xs, ys = zip(*points)
                    line, marker = styles[name]
                    roofline = name == "copy roofline"
                    panel.plot(xs, ys, linestyle=line, marker=marker, markersize=4, color=color,
                               linewidth=3 if roofline else 1.5, alpha=0.35 if roofline else 1.0,
                               label=f"{label}: {name}")
    for panel, ylabel in ((bw, "GB/s per rank (algbw)"), (lat, "time per call, slowest rank (µs)")):
        panel.set_xscale("log", base=2)
        panel.set_xlabel("tokens per rank")
        panel.set_ylabel(ylabel)
        panel.grid(True, which="both", alpha=0.3)
    lat.set_yscale("log")
    bw.legend(fontsize="x-small")
    devices = sorted({doc.get("device", "?") for doc in docs})
    fig.suptitle("nccl-moe-perf on " + ", ".join(devices))
    fig.tight_layout()
    try:
        fig.savefig(out, dpi=120)
    except OSError as e:
        print(f"plot.py: cannot write {out}: {e.strerror}", file=sys.stderr)
        return 2
    print(f"plot.py: wrote {out}")
    return 0


def main(argv):
    parser = argparse.ArgumentParser(description="Plot nccl-moe-perf --json results.")
    parser.add_argument("files", nargs="+", metavar="RESULT.json")
    parser.add_argument("-o", "--output", default="nccl-moe-perf.png", help="the PNG to write")
    parser.add_argument("--label", action="append", default=[], help="a name per file, in order")
    args = parser.parse_args(argv)
    if args.label and len(args.label) != len(args.files):
        parser.error(f"{len(args.label)} --label for {len(args.files)} files")
    try:
        docs = [load(path) for path in args.files]
    except ValueError as e:
        print(f"plot.py: {e}", file=sys.stderr)
        return 2
    labels = args.label or [label_of(path, doc) for path, doc in zip(args.files, docs)]
    return plot(docs, labels, args.output)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
