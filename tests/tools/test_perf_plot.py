"""tools/perf/plot.py on the JSON fixture: the series it reads (the same numbers as the table's
algbw), older files, a PNG where matplotlib is importable (skipped otherwise), and what it says
without matplotlib or with a bad file. Run by ctest (ToolPerfPlot) with NCCL_MOE_PLOT and
NCCL_MOE_PLOT_FIXTURE set; from the source tree the defaults find both."""
import copy
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
PLOT = os.environ.get("NCCL_MOE_PLOT", os.path.join(HERE, "..", "..", "tools", "perf", "plot.py"))
FIXTURE = os.environ.get("NCCL_MOE_PLOT_FIXTURE", os.path.join(HERE, "fixtures", "perf_small.json"))


def load_plot_module():
    spec = importlib.util.spec_from_file_location("nccl_moe_plot", PLOT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def has_matplotlib():
    return importlib.util.find_spec("matplotlib") is not None


def run_plot(args, env=None):
    return subprocess.run([sys.executable, PLOT] + args, capture_output=True, text=True, env=env, timeout=100)


class PlotSeries(unittest.TestCase):
    def setUp(self):
        self.plot = load_plot_module()
        with open(FIXTURE) as f:
            self.doc = json.load(f)

    def test_gbps_is_the_tables_algbw(self):
        s = self.plot.series(self.doc)
        rows = self.doc["rows"]
        self.assertEqual([t for t, _ in s["gbps"]["dispatch"]], [r["tokens"] for r in rows])
        for (_, got), row in zip(s["gbps"]["dispatch"], rows):
            self.assertAlmostEqual(got, row["dispatch_algbw_gbs"], places=9)
        for (_, got), row in zip(s["gbps"]["combine"], rows):
            self.assertAlmostEqual(got, row["combine_algbw_gbs"], places=9)
        for (_, got), row in zip(s["us"]["dispatch"], rows):
            self.assertEqual(got, row["dispatch_us"])
        self.assertEqual(len(s["gbps"]["a2av dispatch"]), len(rows))
        self.assertEqual(len(s["gbps"]["copy roofline"]), len(rows))

    def test_older_files_and_missing_baselines(self):
        old = copy.deepcopy(self.doc)
        for row in old["rows"]:
            for key in list(row):
                if key.endswith("_gbs") or key in ("size_bytes", "count", "type", "dispatch_wrong", "combine_wrong"):
                    del row[key]
            row["a2av_dispatch_us"] = None  # expert-major runs have no baseline
            row["a2av_combine_us"] = 0.0    # the earlier writer's 0
        s = self.plot.series(old)
        self.assertEqual(len(s["gbps"]["dispatch"]), len(old["rows"]))
        self.assertEqual(s["gbps"]["a2av dispatch"], [])
        self.assertEqual(s["us"]["a2av combine"], [])

    def test_labels_say_what_ran(self):
        self.assertEqual(self.plot.label_of("/x/ncclmoe-n8-bf16.json", self.doc), "ncclmoe-n8-bf16 (8 ranks, per-rank)")


class PlotProgram(unittest.TestCase):
    @unittest.skipUnless(has_matplotlib(), "matplotlib is not importable: no PNG check")
    def test_png_of_two_files(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "perf.png")
            result = run_plot([FIXTURE, FIXTURE, "--label", "a", "--label", "b", "-o", out])
            self.assertEqual(result.returncode, 0, result.stderr)
            with open(out, "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")

    def test_without_matplotlib_it_says_how_to_install(self):
        with tempfile.TemporaryDirectory() as tmp:
            os.mkdir(os.path.join(tmp, "matplotlib"))
            with open(os.path.join(tmp, "matplotlib", "__init__.py"), "w") as f:
                f.write("raise ImportError('hidden by the test')\n")
            env = dict(os.environ, PYTHONPATH=tmp)
            result = run_plot([FIXTURE, "-o", os.path.join(tmp, "x.png")], env=env)
        self.assertEqual(result.returncode, 3)
        self.assertIn("pip install matplotlib", result.stderr)

    def test_unreadable_or_foreign_files_are_named(self):
        with tempfile.TemporaryDirectory() as tmp:
            missing = os.path.join(tmp, "missing.json")
            result = run_plot([missing])
            self.assertEqual(result.returncode, 2)
            self.assertIn(f"cannot read {missing}", result.stderr)
            other = os.path.join(tmp, "other.json")
            with open(other, "w") as f:
                f.write('{"a": 1}')
            result = run_plot([other])
            self.assertEqual(result.returncode, 2)
            self.assertIn("is not an nccl-moe-perf --json file", result.stderr)

    def test_labels_must_match_the_files(self):
        result = run_plot([FIXTURE, "--label", "a", "--label", "b"])
        self.assertEqual(result.returncode, 2)
        self.assertIn("2 --label for 1 files", result.stderr)


if __name__ == "__main__":
    unittest.main()
