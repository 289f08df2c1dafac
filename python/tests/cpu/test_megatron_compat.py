"""nccl_moe.fused_a2a against the released Megatron-Core wheels, read from their own sources.

No PyTorch and no import of Megatron: both sides are parsed with ``ast``. For every pinned release
(python/tests/megatron/releases.py) every name Megatron imports from ``fused_a2a`` must exist in
ours, every call of those names in the release must bind to our signature, every keyword of the
release's own ``fused_a2a`` functions must be accepted by ours, and the backends we declare for the
release must be the ones its TransformerConfig offers. A future release that adds a keyword we
lack fails here (see the negative tests at the end, which show the check can fail).
"""
import ast
import os
import sys
import tempfile
import unittest
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(PYTHON_DIR, "tests", "megatron"))
sys.path.insert(0, PYTHON_DIR)

import releases  # noqa: E402
from nccl_moe import megatron_compat as compat  # noqa: E402

FILES = {
    "fused_a2a": "megatron/core/transformer/moe/fused_a2a.py",
    "token_dispatcher": "megatron/core/transformer/moe/token_dispatcher.py",
    "parallel_state": "megatron/core/parallel_state.py",
    "transformer_config": "megatron/core/transformer/transformer_config.py",
    "package_info": "megatron/core/package_info.py",
}


def our_api():
    sources = {}
    for module in ("fused_a2a", "nccl_ep"):
        with open(os.path.join(PYTHON_DIR, "nccl_moe", module + ".py"), encoding="utf-8") as handle:
            sources[module] = handle.read()
    return compat.api_signatures(sources)


def write_release(root, files):
    """The release's files under ``root`` as they lie in the wheel; returns the megatron package."""
    for key, name in FILES.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(files[key])
    return os.path.join(root, "megatron")


def flex_backends(config_source):
    """The values of TransformerConfig.moe_flex_dispatcher_backend's Literal (0.15: none)."""
    for node in ast.walk(ast.parse(config_source)):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and node.target.id == "moe_flex_dispatcher_backend"):
            return tuple(ast.literal_eval(element) for element in node.annotation.slice.elts)
    return ("deepep",)  # 0.15: moe_enable_deepep selects the only flex backend


class ReleasedWheels(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.wheels = releases.fetch()
        cls.sources = {}
        for version, path in cls.wheels.items():
            with zipfile.ZipFile(path) as wheel:
                cls.sources[version] = {key: wheel.read(name).decode("utf-8")
                                        for key, name in FILES.items()}
        cls.api = our_api()

    def test_every_release_is_pinned_and_supported(self):
        self.assertEqual(sorted(self.wheels), sorted(releases.RELEASES))
        for version in self.sources:
            major, minor = (int(v) for v in version.split(".")[:2])
            self.assertIn((major, minor), compat.SUPPORTED, version)

    def test_declared_backends_are_the_releases_own(self):
        for version, files in self.sources.items():
            major, minor = (int(v) for v in version.split(".")[:2])
            self.assertEqual(sorted(compat.SUPPORTED[(major, minor)]),
                             sorted(flex_backends(files["transformer_config"])), version)

    def test_every_imported_name_exists(self):
        for version, files in self.sources.items():
            for module in ("token_dispatcher", "parallel_state"):
                names = compat.imported_names(files[module])
                if module == "token_dispatcher":
                    self.assertTrue(names, "%s imports nothing from fused_a2a?" % version)
                missing = sorted(names - set(self.api))
                self.assertEqual(missing, [], "%s %s imports names we lack" % (version, module))

    def test_every_call_site_binds(self):
        checked = 0
        for version, files in self.sources.items():
            for module in ("token_dispatcher", "parallel_state"):
                names = compat.imported_names(files[module])
                for site in compat.call_sites(files[module], names, module):
                    error = compat.binding_error(self.api[site.name], site)
                    self.assertIsNone(error, "%s %s: %s" % (version, site.where(), error))
                    checked += 1
        self.assertGreater(checked, 20)  # fused_dispatch/combine, hybrid_ep_*, nccl_ep_* ...

    def test_our_functions_accept_every_keyword_of_megatrons(self):
        for version, files in self.sources.items():
            theirs = compat.module_api(files["fused_a2a"])
            for name, signature in theirs.items():
                if signature is None or isinstance(signature, tuple) or name.startswith("_"):
                    continue
                if name not in self.api:
                    continue  # a helper Megatron does not import elsewhere
                ours = self.api[name]
                self.assertIsNotNone(ours, "%s: %s is a function in Megatron" % (version, name))
                for parameter in signature.parameters.values():
                    if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                        continue
                    accepts = parameter.name in ours.parameters or any(
                        p.kind == p.VAR_KEYWORD for p in ours.parameters.values())
                    self.assertTrue(accepts, "%s: %s(%s=...) is not accepted by ours"
                                    % (version, name, parameter.name))

    def test_install_check_finds_nothing_to_refuse(self):
        for version, files in self.sources.items():
            with tempfile.TemporaryDirectory() as root:
                package = write_release(root, files)
                self.assertEqual(compat.release_of(package)[2], version)
                self.assertEqual(compat.release_problems(package, self.api), [], version)

    # ---- the checks above can fail -----------------------------------------------------------

    def newest(self):
        return self.sources[max(self.sources, key=lambda v: tuple(int(x) for x in v.split(".")))]

    def test_a_new_keyword_at_a_call_site_is_caught(self):
        source = self.newest()["token_dispatcher"].replace(
            "hybrid_ep_dispatch(\n", "hybrid_ep_dispatch(\n                future_keyword=1,\n", 1)
        self.assertIn("future_keyword", source)
        names = compat.imported_names(source)
        errors = [compat.binding_error(self.api[s.name], s)
                  for s in compat.call_sites(source, names) if s.name == "hybrid_ep_dispatch"]
        self.assertTrue(any(e and "future_keyword" in e for e in errors), errors)

    def test_a_new_import_and_an_unknown_version_are_refused(self):
        files = dict(self.newest())
        files["token_dispatcher"] = files["token_dispatcher"].replace(
            "    set_deepep_num_sms,\n", "    set_deepep_num_sms,\n    nccl_ep_future_call,\n", 1)
        files["package_info"] = files["package_info"].replace("MINOR = 19", "MINOR = 99")
        with tempfile.TemporaryDirectory() as root:
            problems = compat.release_problems(write_release(root, files), self.api)
        text = "\n".join(problems)
        self.assertIn("nccl_ep_future_call", text)
        self.assertIn("0.99", text)


class SignatureParsing(unittest.TestCase):
    def test_signature_from_source_binds_like_python(self):
        source = "def f(a, b=1, *args, c, d=2, **kw): pass\n"
        signature = compat.module_api(source)["f"]
        site = compat.CallSite("x", 1, "f", 3, ("c", "z"), False)
        self.assertIsNone(compat.binding_error(signature, site))
        site = compat.CallSite("x", 1, "f", 1, (), False)
        self.assertIn("c", compat.binding_error(signature, site))

    def test_names_under_if_and_try_and_reexports(self):
        sources = {"a": "try:\n    X = 1\nexcept ImportError:\n    X = 0\nif X:\n    def g(p): pass\n"
                        "else:\n    g = None\nfrom .b import h\n",
                   "b": "def h(q, r=0): pass\n"}
        api = compat.api_signatures(sources)
        self.assertIn("X", api)
        self.assertEqual(list(api["g"].parameters), ["p"])
        self.assertEqual(list(api["h"].parameters), ["q", "r"])


if __name__ == "__main__":
    unittest.main()
