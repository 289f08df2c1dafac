"""tools/perf/plot.py --peer without matplotlib: the series it takes from the DeepEP peer harness's
merged results.json (a small one built here in compare.py's shape: {"meta", "deepep": {"<ranks>":
bench_deepep.py JSON}, "ncclmoe": {"<ranks>": {"<variant>": nccl-moe-perf JSON}}}), what it says
when a run or field is missing, its refusal of other files (status 2) and its status 3 without
matplotlib. A figure is drawn only where matplotlib is importable (skipped otherwise)."""
import copy
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import unittest

from _support import REPO_DIR

PLOT = os.path.join(REPO_DIR, "tools", "perf", "plot.py")
TOKENS = (256, 1024, 4096)


def load_plot_module():
    spec = importlib.util.spec_from_file_location("nccl_moe_plot_peer", PLOT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def deepep_run(ranks, sms, quant=True):
    """bench_deepep.py --json: one row per token count (here in reverse order, as a file may be)."""
    rows = []
    for i, t in reversed(list(enumerate(TOKENS))):
        row = {"tokens": t, "rows_per_rank": 100.0 * (i + 1), "layout_us": 20.0 + i,
               "dispatch_us": 100.0 * (i + 1), "host_us": 25.0, "dispatch_full_us": 200.0 * (i + 1),
               "fp8_dispatch_us": 80.0 * (i + 1), "fp8_dispatch_full_us": 150.0 * (i + 1),
               "combine_us": 250.0 * (i + 1), "dispatch_bytes": 1, "fp8_dispatch_bytes": 1, "combine_bytes": 1,
               "check": "ok"}
        if quant:
            row["fp8_quant_us"] = 10.0 * (i + 1)
        rows.append(row)
    return {"library": "deepep-v1-intranode", "commit": "567632dd59810d77b3cc05553df953cc0f779799",
            "ranks": ranks, "device": "NVIDIA H100 80GB HBM3", "experts": 256, "topk": 8, "hidden": 7168,
            "sms": sms, "rows": rows}


def ncclmoe_run(ranks, sms, fp8=False, zero_copy=False):
    """nccl-moe-perf --json: layout phases end at 300 + i (scan) after publish; dispatch phases later."""
    rows = []
    for i, t in enumerate(TOKENS):
        rows.append({"tokens": t, "rows_per_rank": 100.0 * (i + 1), "dispatch_us": 150.0 * (i + 1) + (7 if fp8 else 0),
                     "combine_us": 200.0 * (i + 1), "copy_us": 5.0, "a2av_dispatch_us": None,
                     "quantize_us": 3.0 if fp8 else None, "host_us": 6.0,
                     "phases_us": {"layout.publish": [1.0, 150.0 + i], "layout.scan": [150.0 + i, 300.0 + i],
                                   "dispatch.nvlink": [0.0, 900.0], "combine.reduce": [0.0, 950.0]}})
    return {"tool": "nccl-moe-perf", "version": "0.1.0 (NCCL 2.28.9)", "ranks": ranks,
            "device": "NVIDIA H100 80GB HBM3", "experts": 256, "topk": 8, "hidden": 7168, "fp8": fp8,
            "dtype": "bf16", "layout": "per-rank", "sms": sms, "zero_copy": zero_copy, "rows": rows}


def harness_results():
    """8 ranks: everything, the extra fp8_quant_us included. 4 ranks: only bf16-staged on our side
    (no FP8 run), DeepEP from the harness without fp8_quant_us."""
    return {
        "meta": {"deepep_commit": "567632dd59810d77b3cc05553df953cc0f779799", "deepep_build": "device",
                 "steps": {"deepep-n8": "0"}, "gpu": "NVIDIA H100 80GB HBM3, 580.159.04"},
        "deepep": {"8": deepep_run(8, 16), "4": deepep_run(4, 24, quant=False)},
        "ncclmoe": {
            "8": {"bf16-staged": ncclmoe_run(8, 16), "bf16-zerocopy": ncclmoe_run(8, 16, zero_copy=True),
                  "fp8-zerocopy": ncclmoe_run(8, 16, fp8=True, zero_copy=True)},
            "4": {"bf16-staged": ncclmoe_run(4, 24)},
        },
    }


def panel(config, key):
    return next(p for p in config["panels"] if p["key"] == key)


def series(config, key):
    return {s["name"]: s["points"] for s in panel(config, key)["series"]}


def run_plot(args, env=None):
    return subprocess.run([sys.executable, PLOT] + args, capture_output=True, text=True, env=env, timeout=100)


def without_matplotlib(tmp):
    """An environment whose `import matplotlib` fails, whether or not it is installed."""
    os.makedirs(os.path.join(tmp, "hide", "matplotlib"))
    with open(os.path.join(tmp, "hide", "matplotlib", "__init__.py"), "w") as f:
        f.write("raise ImportError('hidden by the test')\n")
    return dict(os.environ, PYTHONPATH=os.path.join(tmp, "hide"))


class PeerSeries(unittest.TestCase):
    def setUp(self):
        self.plot = load_plot_module()
        self.doc = harness_results()
        self.plot.check_peer(self.doc)
        self.configs = self.plot.peer_configs(self.doc)

    def test_one_config_per_rank_count_most_ranks_first(self):
        self.assertEqual([c["ranks"] for c in self.configs], [8, 4])
        self.assertEqual([c["name"] for c in self.configs], ["8 ranks x 16 SMs", "4 ranks x 24 SMs"])
        self.assertEqual([p["key"] for p in self.configs[0]["panels"]], ["dispatch", "fp8", "combine", "layout"])

    def test_layout_span_is_the_end_of_the_last_layout_phase(self):
        row = self.doc["ncclmoe"]["8"]["bf16-staged"]["rows"][1]
        self.assertEqual(self.plot.layout_span_us(row), 301.0)  # not dispatch.nvlink's 900
        self.assertIsNone(self.plot.layout_span_us({"phases_us": {"dispatch.nvlink": [0, 5]}}))
        self.assertIsNone(self.plot.layout_span_us({"tokens": 1}))
        self.assertIsNone(self.plot.layout_span_us({"phases_us": {"layout.scan": [1.0, None]}}))

    def test_bf16_dispatch_is_our_layout_plus_dispatch_against_deepep_uncached(self):
        s = series(self.configs[0], "dispatch")
        ours = s["nccl-moe layout + dispatch (bf16-staged)"]
        theirs = s["DeepEP layout + dispatch, uncached"]
        self.assertEqual([t for t, _ in ours], list(TOKENS))
        self.assertEqual([t for t, _ in theirs], list(TOKENS))  # sorted although the file is reversed
        self.assertEqual(ours, [(256, 450.0), (1024, 601.0), (4096, 752.0)])
        self.assertEqual(theirs, [(256, 200.0), (1024, 400.0), (4096, 600.0)])
        ratios = panel(self.configs[0], "dispatch")["ratios"]
        self.assertEqual(list(ratios),
                         ["nccl-moe layout + dispatch (bf16-staged) / DeepEP layout + dispatch, uncached"])
        got = next(iter(ratios.values()))
        self.assertEqual([t for t, _ in got], list(TOKENS))
        for (_, r), want in zip(got, (450 / 200, 601 / 400, 752 / 600)):
            self.assertAlmostEqual(r, want, places=12)

    def test_fp8_with_and_without_the_cast(self):
        p = panel(self.configs[0], "fp8")
        s = series(self.configs[0], "fp8")
        # fp8-zerocopy stands in for fp8-staged: an FP8 dispatch is staged either way
        ours = s["nccl-moe layout + FP8 dispatch, bf16 input (fp8-zerocopy)"]
        self.assertEqual(ours, [(256, 457.0), (1024, 608.0), (4096, 759.0)])
        self.assertEqual(s["DeepEP FP8, uncached, pre-quantised input"], [(256, 150.0), (1024, 300.0), (4096, 450.0)])
        self.assertEqual(s["DeepEP FP8 + quantise"], [(256, 160.0), (1024, 320.0), (4096, 480.0)])
        self.assertEqual(p["reference"], "DeepEP FP8 + quantise")
        self.assertEqual(len(p["ratios"]), 2)
        got = p["ratios"]["nccl-moe layout + FP8 dispatch, bf16 input (fp8-zerocopy) / DeepEP FP8 + quantise"]
        self.assertAlmostEqual(got[2][1], 759 / 480, places=12)

    def test_fp8_staged_is_preferred_when_both_ran(self):
        doc = harness_results()
        doc["ncclmoe"]["8"]["fp8-staged"] = ncclmoe_run(8, 16, fp8=True)
        names = series(self.plot.peer_configs(doc)[0], "fp8")
        self.assertIn("nccl-moe layout + FP8 dispatch, bf16 input (fp8-staged)", names)
        self.assertNotIn("nccl-moe layout + FP8 dispatch, bf16 input (fp8-zerocopy)", names)

    def test_combine_and_layout_alone(self):
        s = series(self.configs[0], "combine")
        self.assertEqual(s["nccl-moe combine (bf16-staged)"], [(256, 200.0), (1024, 400.0), (4096, 600.0)])
        self.assertEqual(s["DeepEP combine"], [(256, 250.0), (1024, 500.0), (4096, 750.0)])
        s = series(self.configs[0], "layout")
        self.assertEqual(s["nccl-moe layout (bf16-staged run)"], [(256, 300.0), (1024, 301.0), (4096, 302.0)])
        self.assertEqual(s["DeepEP get_dispatch_layout"], [(256, 20.0), (1024, 21.0), (4096, 22.0)])
        got = panel(self.configs[0], "layout")["ratios"]
        self.assertAlmostEqual(next(iter(got.values()))[0][1], 15.0, places=12)

    def test_measured_uncached_times_take_precedence_over_the_phase_spans(self):
        # nccl-moe-perf now times layout (counts read) and layout + dispatch uncached, as DeepEP's full
        # path is timed; a file with the fields uses them, one without them the spans (above).
        doc = harness_results()
        for i, row in enumerate(doc["ncclmoe"]["8"]["bf16-staged"]["rows"]):
            row["layout_us"] = 60.0 + i
            row["layout_dispatch_us"] = 210.0 + i
        doc["ncclmoe"]["8"]["bf16-staged"]["rows"][2]["layout_dispatch_us"] = None  # not measured: the sum
        config = self.plot.peer_configs(doc)[0]
        self.assertEqual(series(config, "dispatch")["nccl-moe layout + dispatch (bf16-staged)"],
                         [(256, 210.0), (1024, 211.0), (4096, 752.0)])
        self.assertEqual(series(config, "layout")["nccl-moe layout (bf16-staged run)"],
                         [(256, 60.0), (1024, 61.0), (4096, 62.0)])
        self.assertEqual(self.plot.our_layout_us({"layout_us": 0, "phases_us": {"layout.scan": [0, 9.0]}}), 9.0)

    def test_the_complete_config_has_no_notes(self):
        self.assertEqual(self.configs[0]["notes"], [])

    def test_an_absent_variant_or_field_leaves_its_series_out_and_says_so(self):
        four = self.configs[1]
        s = series(four, "fp8")
        self.assertEqual(list(s), ["DeepEP FP8, uncached, pre-quantised input"])
        self.assertEqual(panel(four, "fp8")["ratios"], {})
        self.assertEqual(panel(four, "fp8")["reference"], "DeepEP FP8, uncached, pre-quantised input")
        notes = "\n".join(four["notes"])
        self.assertIn("4 ranks x 24 SMs: (b) layout + FP8 dispatch:", notes)
        self.assertIn("no nccl-moe FP8 run (fp8-staged or fp8-zerocopy) for 4 ranks in the file", notes)
        self.assertIn("'DeepEP FP8 + quantise' left out: its rows have no fp8_quant_us", notes)
        self.assertEqual(len(four["notes"]), 2)
        self.assertEqual(len(series(four, "dispatch")), 2)  # the rest is there

    def test_no_deepep_run_or_no_staged_run(self):
        doc = harness_results()
        del doc["deepep"]["4"]
        del doc["ncclmoe"]["8"]["bf16-staged"]
        eight, four = self.plot.peer_configs(doc)
        self.assertEqual(list(series(eight, "dispatch")), ["DeepEP layout + dispatch, uncached"])
        self.assertEqual(list(series(eight, "combine")), ["DeepEP combine"])
        # the layout falls back to another run of ours, and says so in the series' name
        self.assertEqual(series(eight, "layout")["nccl-moe layout (bf16-zerocopy run)"][0], (256, 300.0))
        self.assertIn("no nccl-moe bf16-staged run for 8 ranks in the file", "\n".join(eight["notes"]))
        self.assertEqual([s["side"] for p in four["panels"] for s in p["series"]], ["nccl-moe"] * 3)
        self.assertIn("no DeepEP run for 4 ranks in the file", "\n".join(four["notes"]))
        self.assertEqual(four["name"], "4 ranks x 24 SMs")

    def test_points_missing_at_some_tokens(self):
        doc = harness_results()
        for row in doc["deepep"]["8"]["rows"]:
            if row["tokens"] == 4096:
                row["combine_us"] = float("nan")  # what bench_deepep.py's json.dump writes for NaN
        doc["ncclmoe"]["8"]["bf16-staged"]["rows"][0]["combine_us"] = None
        eight = self.plot.peer_configs(doc)[0]
        s = series(eight, "combine")
        self.assertEqual([t for t, _ in s["DeepEP combine"]], [256, 1024])
        self.assertEqual([t for t, _ in s["nccl-moe combine (bf16-staged)"]], [1024, 4096])
        self.assertEqual([t for t, _ in next(iter(panel(eight, "combine")["ratios"].values()))], [1024])
        notes = "\n".join(eight["notes"])
        self.assertIn("'DeepEP combine': no combine_us at tokens [4096], those points left out", notes)
        self.assertIn("'nccl-moe combine (bf16-staged)': no combine_us at tokens [256]", notes)

    def test_mismatched_runs_are_noted(self):
        doc = harness_results()
        doc["deepep"]["8"]["rows"][0]["rows_per_rank"] += 3
        doc["deepep"]["8"]["hidden"] = 4096
        notes = "\n".join(self.plot.peer_configs(doc)[0]["notes"])
        self.assertIn("rows per rank differ between DeepEP and nccl-moe at tokens [4096]", notes)
        self.assertIn("the runs differ in hidden (4096, 7168)", notes)

    def test_title_names_card_shape_and_versions(self):
        title = self.plot.peer_title(self.doc, self.configs[0])
        self.assertTrue(title.startswith("nccl-moe vs DeepEP V1 intranode: 8 ranks x 16 SMs per op\n"))
        for part in ("NVIDIA H100 80GB HBM3, 580.159.04", "E=256 top-8 H=7168", "DeepEP 567632d",
                     "nccl-moe 0.1.0 (NCCL 2.28.9)"):
            self.assertIn(part, title)
        doc = copy.deepcopy(self.doc)
        doc["meta"] = None  # compare.py without META.json
        title = self.plot.peer_title(doc, self.plot.peer_configs(doc)[0])
        self.assertIn("NVIDIA H100 80GB HBM3 ·", title)  # the runs' device without meta's gpu
        self.assertIn("DeepEP 567632d", title)  # from the DeepEP run's own commit
        doc["meta"] = {"ncclmoe_commit": "f34b1ef0123"}  # not written by the harness today; read if it is
        title = self.plot.peer_title(doc, self.plot.peer_configs(doc)[0])
        self.assertIn("nccl-moe 0.1.0 (NCCL 2.28.9) f34b1ef", title)

    def test_one_output_file_per_config(self):
        self.assertEqual(self.plot.peer_output_paths("out/peer.svg", self.configs),
                         {8: "out/peer-n8.svg", 4: "out/peer-n4.svg"})


class PeerFileChecks(unittest.TestCase):
    def setUp(self):
        self.plot = load_plot_module()

    def refused(self, doc, message):
        with self.assertRaises(ValueError) as raised:
            self.plot.check_peer(doc, "r.json")
        self.assertIn(message, str(raised.exception))

    def test_files_that_are_not_a_harness_result(self):
        self.refused({"a": 1}, "r.json is not the DeepEP peer harness's results.json")
        self.refused([1, 2], "r.json is not the DeepEP peer harness's results.json")
        self.refused(ncclmoe_run(8, 16), "r.json is one nccl-moe-perf --json file, not the peer harness's")
        self.refused({"meta": None, "deepep": {}, "ncclmoe": {}}, "r.json holds no runs")
        self.refused({"meta": 3, "deepep": {"8": deepep_run(8, 16)}, "ncclmoe": {}}, "\"meta\" is neither")
        self.refused({"deepep": {"eight": deepep_run(8, 16)}, "ncclmoe": {}}, "rank count 'eight'")
        self.refused({"deepep": {}, "ncclmoe": {"8": ncclmoe_run(8, 16)}},
                     "ncclmoe['8']['tool'] has no \"rows\" list")
        self.refused({"deepep": {"8": {"rows": [{"tokens": "256"}]}}, "ncclmoe": {}},
                     "deepep['8'] rows[0] has no positive integer \"tokens\"")
        self.plot.check_peer({"deepep": {"8": deepep_run(8, 16)}, "ncclmoe": {}})  # meta may be absent


class PeerProgram(unittest.TestCase):
    def write(self, tmp, doc, name="results.json"):
        path = os.path.join(tmp, name)
        with open(path, "w") as f:
            f.write(doc if isinstance(doc, str) else json.dumps(doc))
        return path

    def test_bad_inputs_exit_2_with_the_reason(self):
        with tempfile.TemporaryDirectory() as tmp:
            cases = [
                ([os.path.join(tmp, "missing.json")], "cannot read"),
                ([self.write(tmp, "{not json", "bad.json")], "is not JSON"),
                ([self.write(tmp, {"rows": []}, "other.json")], "is not the DeepEP peer harness's results.json"),
                ([self.write(tmp, ncclmoe_run(8, 16), "perf.json")], "plot it without --peer"),
            ]
            for files, message in cases:
                result = run_plot(["--peer"] + files + ["-o", os.path.join(tmp, "x.png")])
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertIn(message, result.stderr)
            good = self.write(tmp, harness_results())
            result = run_plot(["--peer", good, "-o", os.path.join(tmp, "x.jpg2")])
            self.assertEqual(result.returncode, 2)
            self.assertIn("one of .png, .svg, .pdf", result.stderr)
            result = run_plot(["--peer", good, good])
            self.assertEqual(result.returncode, 2)
            self.assertIn("--peer takes one RESULTS.json", result.stderr)
            result = run_plot([])
            self.assertEqual(result.returncode, 2)
            self.assertIn("or --peer RESULTS.json", result.stderr)

    def test_without_matplotlib_status_3_after_the_notes(self):
        with tempfile.TemporaryDirectory() as tmp:
            good = self.write(tmp, harness_results())
            result = run_plot(["--peer", good, "-o", os.path.join(tmp, "peer.svg")], env=without_matplotlib(tmp))
            self.assertEqual(result.returncode, 3, result.stderr)
            self.assertIn("pip install matplotlib", result.stderr)
            self.assertIn("plot.py: 4 ranks x 24 SMs: (b) layout + FP8 dispatch: 'nccl-moe layout + FP8 dispatch",
                          result.stderr)
            self.assertFalse(os.path.exists(os.path.join(tmp, "peer-n8.svg")))

    @unittest.skipUnless(importlib.util.find_spec("matplotlib") is not None, "matplotlib is not importable")
    def test_one_figure_per_config(self):
        with tempfile.TemporaryDirectory() as tmp:
            good = self.write(tmp, harness_results())
            result = run_plot(["--peer", good, "-o", os.path.join(tmp, "peer.png")])
            self.assertEqual(result.returncode, 0, result.stderr)
            for ranks in (8, 4):
                with open(os.path.join(tmp, f"peer-n{ranks}.png"), "rb") as f:
                    self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")


if __name__ == "__main__":
    unittest.main()
