#!/usr/bin/env python3
"""Plot nccl-moe-perf --json results: GB/s per rank and latency against tokens per rank.

usage: plot.py RESULT.json [RESULT.json ...] [-o OUT.png] [--label NAME ...]
       plot.py --peer RESULTS.json [-o OUT.svg|OUT.png]

One line per measurement and file: nccl-moe dispatch and combine, and the baselines of the same
run, the NCCL all-to-all-v path (a2av) and the device-to-device copy roofline. GB/s is per rank,
as the table's algbw: the bytes a rank receives in dispatch (or sends back in combine) over the
slowest rank's time per call. The a2av baseline moves rows of the token type (bf16 or fp32, also
in FP8 runs); the copy roofline copies every rank's dispatch bytes on one GPU, shown per rank.
Older JSON files (before the size/algbw fields) plot the same: only the earlier fields are read.

--peer: nccl-moe next to DeepEP from the merged results.json of the DeepEP peer harness (its
compare.py: {"meta": ..., "deepep": {"<ranks>": bench_deepep.py JSON}, "ncclmoe": {"<ranks>":
{"<variant>": nccl-moe-perf JSON}}}). One figure per rank configuration, written to OUT with
"-n<ranks>" before its extension, four panels of time per call against tokens per rank:
(a) layout + bf16 dispatch: ours (bf16-staged run: layout_dispatch_us, timed uncached with the counts
read on the host as DeepEP's full path is; from older files the layout span + dispatch_us) against DeepEP's
uncached dispatch (dispatch_full_us: get_dispatch_layout + notify + dispatch); (b) the same with
FP8 rows: ours (fp8-staged, else fp8-zerocopy run, whose dispatch is staged too; bf16 input
quantised in the call) against DeepEP's fp8_dispatch_full_us (pre-quantised input) and, where the
harness timed it, that + fp8_quant_us (DeepEP's per-128 cast of the bf16 input); (c) staged
combine, ours (bf16-staged) against DeepEP's; (d) the layout alone: ours against
get_dispatch_layout (layout_us; ours: its layout_us, else the layout span). Our layout span: from the call's start to the end of its last
layout.* phase (layout.scan, or layout.publish where the layout is one kernel), from the run's phases_us (a separate pass with
phase timing on), slowest rank. Each nccl-moe point is labelled with nccl-moe / DeepEP (< 1:
nccl-moe faster). What the file lacks (a variant, a field) leaves that series out, said on stderr.

Needs matplotlib (pip install matplotlib, or apt-get install python3-matplotlib); without it the
script says so and exits with status 3. Status 2: a bad argument or an unreadable file.
"""
import argparse
import json
import math
import os
import sys
import textwrap

INSTALL_HINT = ("plot.py needs matplotlib: pip install matplotlib "
                "(or, on Debian/Ubuntu, apt-get install python3-matplotlib)")


def _read_json(path):
    """The JSON document in path; ValueError naming the path if it cannot be read or parsed."""
    try:
        with open(path) as f:
            return json.load(f)
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror}") from e
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not JSON: {e}") from e


def load(path):
    """The document of one --json file; ValueError naming the path if it is not one."""
    doc = _read_json(path)
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


def _pyplot():
    """matplotlib.pyplot on the Agg backend, or None after printing the install hint."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(INSTALL_HINT, file=sys.stderr)
        return None
    return plt


def plot(docs, labels, out):
    plt = _pyplot()
    if plt is None:
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


# ---- --peer: nccl-moe next to DeepEP from the peer harness's merged results.json ----------------
# Everything up to plot_peer reads and checks only: no matplotlib, so the CPU tests can call it.

# Our FP8 runs in the order they are preferred: the dispatch of either is staged (--zero-copy does
# not apply to an FP8 dispatch, whose bf16 input is quantised in the call).
PEER_FP8_VARIANTS = ("fp8-staged", "fp8-zerocopy")
PEER_BF16_STAGED = "bf16-staged"
PEER_IMAGE_TYPES = (".png", ".svg", ".pdf")


def load_peer(path):
    """The merged document of the peer harness (its compare.py's RESULTS.json); ValueError naming
    the path and what is wrong if it is not one."""
    doc = _read_json(path)
    check_peer(doc, path)
    return doc


def check_peer(doc, path="the document"):
    """ValueError unless doc has the shape compare.py writes: {"meta": {...} or null, "deepep":
    {"<ranks>": {"rows": [...]}}, "ncclmoe": {"<ranks>": {"<variant>": {"rows": [...]}}}}."""
    if isinstance(doc, dict) and isinstance(doc.get("rows"), list) and "ranks" in doc:
        raise ValueError(f"{path} is one nccl-moe-perf --json file, not the peer harness's results.json: "
                         "plot it without --peer")
    if not isinstance(doc, dict) or not isinstance(doc.get("deepep"), dict) or \
            not isinstance(doc.get("ncclmoe"), dict):
        raise ValueError(f"{path} is not the DeepEP peer harness's results.json (compare.py's merged JSON: "
                         "no \"deepep\" and \"ncclmoe\" objects)")
    if doc.get("meta") is not None and not isinstance(doc["meta"], dict):
        raise ValueError(f"{path}: \"meta\" is neither an object nor null")

    def check_run(run, where):
        if not isinstance(run, dict) or not isinstance(run.get("rows"), list):
            raise ValueError(f"{path}: {where} has no \"rows\" list")
        for i, row in enumerate(run["rows"]):
            tokens = row.get("tokens") if isinstance(row, dict) else None
            if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens <= 0:
                raise ValueError(f"{path}: {where} rows[{i}] has no positive integer \"tokens\"")

    for key in list(doc["deepep"]) + list(doc["ncclmoe"]):
        if not str(key).isdigit() or int(key) <= 0:
            raise ValueError(f"{path}: rank count {key!r} is not a positive integer")
    for key, run in doc["deepep"].items():
        check_run(run, f"deepep[{key!r}]")
    for key, variants in doc["ncclmoe"].items():
        if not isinstance(variants, dict):
            raise ValueError(f"{path}: ncclmoe[{key!r}] is not an object of variants")
        for variant, run in variants.items():
            check_run(run, f"ncclmoe[{key!r}][{variant!r}]")
    if not doc["deepep"] and not doc["ncclmoe"]:
        raise ValueError(f"{path} holds no runs (its \"deepep\" and \"ncclmoe\" are empty: every step failed?)")


def _time(value):
    """A time in µs, or None for what was not measured (absent, null, NaN, 0 or less)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value > 0 else None


def layout_span_us(row):
    """Our layout time of one nccl-moe-perf row: the call's start to the end of its last layout.*
    phase (phases_us, slowest rank); None without layout phases."""
    phases = row.get("phases_us")
    if not isinstance(phases, dict):
        return None
    ends = [_time(span[1]) for name, span in phases.items()
            if name.startswith("layout.") and isinstance(span, (list, tuple)) and len(span) == 2]
    ends = [end for end in ends if end is not None]
    return max(ends) if ends else None


def our_layout_us(row):
    """Our layout time of one row: layout_us as measured (uncached, its counts read on the host,
    like DeepEP's full path; written by nccl-moe-perf since it has the field), else the layout span."""
    measured = _time(row.get("layout_us"))
    return measured if measured is not None else layout_span_us(row)


def _rows_by_tokens(run):
    return {row["tokens"]: row for row in run["rows"]} if run else {}


def _points(rows, value_of):
    """[(tokens, µs)] in token order, and the tokens where value_of gave nothing."""
    points, missing = [], []
    for tokens in sorted(rows):
        value = value_of(rows[tokens])
        if value is None:
            missing.append(tokens)
        else:
            points.append((tokens, value))
    return points, missing


def _ratios(ours, theirs):
    """[(tokens, ours / theirs)] at the tokens both have."""
    theirs = dict(theirs)
    return [(t, value / theirs[t]) for t, value in ours if t in theirs]


def peer_configs(doc):
    """One entry per rank configuration of a checked peer document, most ranks first:

    {"ranks", "sms", "name" ("8 ranks x 16 SMs"), "devices", "panels", "notes"}. "panels" is a list
    of {"key" ("dispatch", "fp8", "combine", "layout"), "title", "series", "ratios", "reference",
    "left_out"}:
    "series" the non-empty ones, each {"name", "side" ("nccl-moe" or "DeepEP"), "points": [(tokens,
    µs), ...] in token order}; "ratios" {"<ours> / <DeepEP>": [(tokens, ours / DeepEP)]} for every
    pair; "reference" the DeepEP series the figure labels the ratio against (None without one);
    "left_out" a sentence per series the file could not give (also in the notes).
    "notes": sentences on what was left out and why, and mismatches between the two sides.
    """
    keys = sorted({int(k) for k in doc["deepep"]} | {int(k) for k in doc["ncclmoe"]}, reverse=True)
    return [_peer_config(doc, ranks) for ranks in keys]


def _peer_config(doc, ranks):
    deepep = doc["deepep"].get(str(ranks))
    ours = doc["ncclmoe"].get(str(ranks), {})
    runs = ([deepep] if deepep else []) + list(ours.values())
    sms = sorted({run.get("sms") for run in runs if isinstance(run.get("sms"), int)})
    name = f"{ranks} ranks x {'/'.join(map(str, sms)) or '?'} SMs"
    notes = []

    def note(text):
        notes.append(f"{name}: {text}")

    if len(sms) > 1:
        note(f"the runs differ in SMs per op ({', '.join(map(str, sms))})")
    for field in ("experts", "topk", "hidden"):
        values = sorted({run.get(field) for run in runs if run.get(field) is not None}, key=str)
        if len(values) > 1:
            note(f"the runs differ in {field} ({', '.join(map(str, values))}): not the same shape")

    d = _rows_by_tokens(deepep)
    staged = _rows_by_tokens(ours.get(PEER_BF16_STAGED))
    fp8_variant = next((v for v in PEER_FP8_VARIANTS if v in ours), None)
    fp8 = _rows_by_tokens(ours.get(fp8_variant))
    if d and staged:
        differ = [t for t in sorted(set(d) & set(staged))
                  if isinstance(d[t].get("rows_per_rank"), (int, float))
                  and isinstance(staged[t].get("rows_per_rank"), (int, float))
                  and abs(d[t]["rows_per_rank"] - staged[t]["rows_per_rank"]) > 0.5]
        if differ:
            note(f"rows per rank differ between DeepEP and nccl-moe at tokens {differ}: not the same routing")

    # (side, name, rows, value_of, why there are no rows, what the missing field is)
    no_deepep = f"no DeepEP run for {ranks} ranks in the file"
    no_staged = f"no nccl-moe {PEER_BF16_STAGED} run for {ranks} ranks in the file"
    no_fp8 = f"no nccl-moe FP8 run ({' or '.join(PEER_FP8_VARIANTS)}) for {ranks} ranks in the file"

    def with_layout(field):
        def value(row):
            # Measured in one timing where the run has it; else the layout span plus the cached call.
            measured = _time(row.get("layout_dispatch_us"))
            if measured is not None:
                return measured
            layout, call = layout_span_us(row), _time(row.get(field))
            return layout + call if layout is not None and call is not None else None
        return value

    def field(name):
        return lambda row: _time(row.get(name))

    def quantised(row):
        call, cast = _time(row.get("fp8_dispatch_full_us")), _time(row.get("fp8_quant_us"))
        return call + cast if call is not None and cast is not None else None

    layout_rows, layout_run = staged, PEER_BF16_STAGED
    if not any(our_layout_us(row) is not None for row in staged.values()):
        for variant in ("bf16-zerocopy",) + PEER_FP8_VARIANTS:
            rows = _rows_by_tokens(ours.get(variant))
            if any(our_layout_us(row) is not None for row in rows.values()):
                if staged:
                    note(f"the {PEER_BF16_STAGED} run has no layout phases: the layout is the {variant} run's")
                layout_rows, layout_run = rows, variant
                break

    specs = [
        ("dispatch", "(a) layout + dispatch, bf16, staged", None, [
            ("nccl-moe", f"nccl-moe layout + dispatch ({PEER_BF16_STAGED})", staged, with_layout("dispatch_us"),
             no_staged, "dispatch_us or layout phases (phases_us)"),
            ("DeepEP", "DeepEP layout + dispatch, uncached", d, field("dispatch_full_us"),
             no_deepep, "dispatch_full_us (bench_deepep.py without --full?)"),
        ]),
        ("fp8", "(b) layout + FP8 dispatch", "DeepEP FP8 + quantise", [
            ("nccl-moe", "nccl-moe layout + FP8 dispatch, bf16 input" + (f" ({fp8_variant})" if fp8_variant else ""),
             fp8, with_layout("dispatch_us"), no_fp8, "dispatch_us or layout phases (phases_us)"),
            ("DeepEP", "DeepEP FP8, uncached, pre-quantised input", d, field("fp8_dispatch_full_us"),
             no_deepep, "fp8_dispatch_full_us (bench_deepep.py without --fp8 or --full?)"),
            ("DeepEP", "DeepEP FP8 + quantise", d, quantised, no_deepep,
             "fp8_quant_us (a harness without the timed cast) or fp8_dispatch_full_us"),
        ]),
        ("combine", "(c) combine, bf16, staged", None, [
            ("nccl-moe", f"nccl-moe combine ({PEER_BF16_STAGED})", staged, field("combine_us"), no_staged,
             "combine_us"),
            ("DeepEP", "DeepEP combine", d, field("combine_us"), no_deepep, "combine_us"),
        ]),
        ("layout", "(d) layout alone", None, [
            ("nccl-moe", f"nccl-moe layout ({layout_run} run)", layout_rows, our_layout_us,
             no_staged, "layout_us or layout phases (phases_us)"),
            ("DeepEP", "DeepEP get_dispatch_layout", d, field("layout_us"), no_deepep, "layout_us"),
        ]),
    ]
    panels = []
    for key, title, preferred, members in specs:
        series, left_out = [], []
        for side, label, rows, value_of, no_rows, what in members:
            if not rows:
                left_out.append(f"'{label}' left out: {no_rows}")
                note(f"{title}: {left_out[-1]}")
                continue
            points, missing = _points(rows, value_of)
            if not points:
                left_out.append(f"'{label}' left out: its rows have no {what}")
                note(f"{title}: {left_out[-1]}")
                continue
            if missing:
                note(f"{title}: '{label}': no {what} at tokens {missing}, those points left out")
            series.append({"name": label, "side": side, "points": points})
        deepep_names = [s["name"] for s in series if s["side"] == "DeepEP"]
        reference = preferred if preferred in deepep_names else (deepep_names[0] if deepep_names else None)
        ratios = {f"{a['name']} / {b['name']}": _ratios(a["points"], b["points"])
                  for a in series if a["side"] == "nccl-moe" for b in series if b["side"] == "DeepEP"}
        panels.append({"key": key, "title": title, "series": series, "ratios": ratios, "reference": reference,
                       "left_out": left_out})
    devices = sorted({run.get("device") for run in runs if isinstance(run.get("device"), str)})
    return {"ranks": ranks, "sms": sms[0] if len(sms) == 1 else None, "name": name, "devices": devices,
            "panels": panels, "notes": notes}


def peer_title(doc, config):
    """Two lines: what is compared at which configuration; the card, shape and versions the file gives."""
    meta = doc.get("meta") or {}
    deepep = doc["deepep"].get(str(config["ranks"])) or {}
    ours = doc["ncclmoe"].get(str(config["ranks"]), {})
    first = f"nccl-moe vs DeepEP V1 intranode: {config['name']} per op"
    gpu = meta.get("gpu") if isinstance(meta.get("gpu"), str) and meta.get("gpu").strip() else None
    facts = [gpu.strip().splitlines()[0] if gpu else (", ".join(config["devices"]) or "card not recorded")]
    shape_run = deepep or next(iter(ours.values()), {})
    if all(shape_run.get(k) is not None for k in ("experts", "topk", "hidden")):
        facts.append(f"E={shape_run['experts']} top-{shape_run['topk']} H={shape_run['hidden']}")
    deepep_commit = meta.get("deepep_commit") or deepep.get("commit")
    if isinstance(deepep_commit, str) and deepep_commit:
        facts.append(f"DeepEP {deepep_commit[:7]}")
    versions = sorted({run.get("version") for run in ours.values() if isinstance(run.get("version"), str)})
    commit = next((meta.get(k) for k in ("ncclmoe_commit", "nccl_moe_commit") if isinstance(meta.get(k), str)), None)
    if versions or commit:
        facts.append("nccl-moe " + " ".join(([", ".join(versions)] if versions else []) +
                                            ([commit[:7]] if commit else [])))
    return first + "\n" + " · ".join(facts)


def peer_output_paths(out, configs):
    """{ranks: path}: OUT with -n<ranks> before its extension, one file per configuration."""
    stem, ext = os.path.splitext(out)
    return {c["ranks"]: f"{stem}-n{c['ranks']}{ext}" for c in configs}


def plot_peer(doc, configs, out):
    plt = _pyplot()
    if plt is None:
        return 3
    from matplotlib.ticker import LogFormatter
    styles = {"nccl-moe": ("-", "o", "C0"), "DeepEP": ("--", "s", "C1"), "DeepEP FP8 + quantise": (":", "^", "C3")}
    paths = peer_output_paths(out, configs)
    for config in configs:
        fig, axes = plt.subplots(2, 2, figsize=(13, 9.5))
        tokens = sorted({t for p in config["panels"] for s in p["series"] for t, _ in s["points"]})
        for panel, ax in zip(config["panels"], axes.flat):
            for s in panel["series"]:
                line, marker, color = styles.get(s["name"], styles[s["side"]])
                xs, ys = zip(*s["points"])
                ax.plot(xs, ys, linestyle=line, marker=marker, markersize=5, color=color, linewidth=1.6,
                        label=s["name"])
            reference = panel["reference"]
            for s in panel["series"]:
                if s["side"] != "nccl-moe" or reference is None:
                    continue
                ys = dict(s["points"])
                for t, r in panel["ratios"][f"{s['name']} / {reference}"]:
                    ax.annotate(f"{r:.2f}", (t, ys[t]), textcoords="offset points", xytext=(0, 7),
                                ha="center", fontsize="x-small", color=styles["nccl-moe"][2])
            ax.set_title(panel["title"] + (f"\nlabels: nccl-moe / {reference}" if reference and
                                           any(s["side"] == "nccl-moe" for s in panel["series"]) else ""),
                         fontsize="medium")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            if tokens:
                ax.set_xticks(tokens)
                ax.set_xticklabels([str(t) for t in tokens])
            # µs as plain numbers; LogFormatter labels minor ticks only where few decades show
            ax.yaxis.set_major_formatter(LogFormatter())
            ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
            ax.margins(x=0.06, y=0.12)
            ax.set_xlabel("tokens per rank")
            ax.set_ylabel("time per call, slowest rank (µs)")
            ax.grid(True, which="both", alpha=0.3)
            if panel["series"]:
                ax.legend(fontsize="x-small")
            if panel["left_out"] or not panel["series"]:
                text = "\n".join(textwrap.fill(line, 80) for line in panel["left_out"]) or "no data in the file"
                ax.text(0.5, 0.5 if not panel["series"] else 0.03, text, transform=ax.transAxes, ha="center",
                        va="center" if not panel["series"] else "bottom", fontsize="x-small", color="0.35",
                        bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"})
        fig.suptitle(peer_title(doc, config))
        fig.tight_layout()
        path = paths[config["ranks"]]
        try:
            fig.savefig(path, dpi=120)
        except OSError as e:
            print(f"plot.py: cannot write {path}: {e.strerror}", file=sys.stderr)
            return 2
        finally:
            plt.close(fig)
        print(f"plot.py: wrote {path}")
    return 0


def peer_main(path, out):
    """--peer: status 2 for a bad file or output name (before matplotlib is needed), 3 without
    matplotlib, else plot_peer's."""
    if os.path.splitext(out)[1].lower() not in PEER_IMAGE_TYPES:
        print(f"plot.py: -o {out}: the image type is its extension, one of {', '.join(PEER_IMAGE_TYPES)}",
              file=sys.stderr)
        return 2
    try:
        doc = load_peer(path)
    except ValueError as e:
        print(f"plot.py: {e}", file=sys.stderr)
        return 2
    configs = peer_configs(doc)
    for config in configs:
        for text in config["notes"]:
            print(f"plot.py: {text}", file=sys.stderr)
    return plot_peer(doc, configs, out)


def main(argv):
    parser = argparse.ArgumentParser(description="Plot nccl-moe-perf --json results, or nccl-moe next to "
                                                 "DeepEP from the peer harness's results.json (--peer).")
    parser.add_argument("files", nargs="*", metavar="RESULT.json")
    parser.add_argument("-o", "--output", default=None,
                        help="the image to write (nccl-moe-perf.png; with --peer nccl-moe-vs-deepep.png, "
                             "one file per rank configuration: OUT-n<ranks>.EXT)")
    parser.add_argument("--label", action="append", default=[], help="a name per file, in order")
    parser.add_argument("--peer", metavar="RESULTS.json",
                        help="the DeepEP peer harness's merged results.json: nccl-moe and DeepEP side by side")
    args = parser.parse_args(argv)
    if args.peer is not None:
        if args.files or args.label:
            parser.error("--peer takes one RESULTS.json and no other files or --label")
        return peer_main(args.peer, args.output or "nccl-moe-vs-deepep.png")
    if not args.files:
        parser.error("give RESULT.json files (nccl-moe-perf --json), or --peer RESULTS.json")
    if args.label and len(args.label) != len(args.files):
        parser.error(f"{len(args.label)} --label for {len(args.files)} files")
    try:
        docs = [load(path) for path in args.files]
    except ValueError as e:
        print(f"plot.py: {e}", file=sys.stderr)
        return 2
    labels = args.label or [label_of(path, doc) for path, doc in zip(args.files, docs)]
    return plot(docs, labels, args.output or "nccl-moe-perf.png")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
