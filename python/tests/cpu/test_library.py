"""Finding and loading libnccl_moe.so, and turning its failures into Python exceptions."""
import os
import unittest

from _support import REPO_DIR, load_library_or_skip, run_python

import nccl_moe
from nccl_moe import errors, library, shapes, structs
from nccl_moe.comm import MoeComm


class LibraryLookup(unittest.TestCase):
    def test_explicit_path_that_does_not_exist_is_an_error_not_a_fallback(self):
        result = run_python(
            "import nccl_moe\n"
            "try:\n"
            "    nccl_moe.load_library()\n"
            "except nccl_moe.LibraryNotFoundError as error:\n"
            "    print('ERROR', error)\n",
            env={"NCCL_MOE_LIBRARY": "/nonexistent/libnccl_moe.so"})
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("ERROR libnccl_moe.so was not found", result.stdout)
        self.assertIn("NCCL_MOE_LIBRARY: /nonexistent/libnccl_moe.so (no such file)", result.stdout)
        self.assertNotIn("build tree", result.stdout)

    def test_explicit_path_that_is_not_a_library(self):
        result = run_python(
            "import nccl_moe\n"
            "print(nccl_moe.is_available())\n",
            env={"NCCL_MOE_LIBRARY": os.path.abspath(__file__)})
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), "False")

    def test_search_order(self):
        paths = library.candidate_paths(environ={})
        origins = [origin for origin, _ in paths]
        first_package = origins.index("next to the package")
        self.assertLess(first_package, origins.index("build tree"))
        self.assertLess(origins.index("build tree"), origins.index("dynamic linker search path"))
        build = dict((o, p) for o, p in paths)["build tree"]
        self.assertEqual(build, os.path.join(REPO_DIR, "build", "src", "libnccl_moe.so"))
        self.assertEqual(library.candidate_paths(environ={"NCCL_MOE_LIBRARY": "/x.so"})[-1],
                         ("NCCL_MOE_LIBRARY", "/x.so"))

    def test_mapped_libraries_sees_this_interpreter(self):
        self.assertTrue(any("python" in os.path.basename(p) or "libc" in os.path.basename(p)
                            for p in library.mapped_libraries("")))


class ErrorsFromTheLibrary(unittest.TestCase):
    """Needs a built libnccl_moe.so (tools/build.sh, or NCCL_MOE_LIBRARY); no GPU."""

    @classmethod
    def setUpClass(cls):
        cls.lib = load_library_or_skip()

    def test_version(self):
        # One version source: the header's NCCL_MOE_MAJOR/MINOR/PATCH (CMake's project version is
        # read from it); the library and the Python package must say the same.
        import re
        with open(os.path.join(REPO_DIR, "include", "nccl_moe.h")) as header:
            text = header.read()
        parts = [int(re.search(r"^#define NCCL_MOE_%s (\d+)$" % name, text, re.M).group(1))
                 for name in ("MAJOR", "MINOR", "PATCH")]
        self.assertEqual(self.lib.version, parts[0] * 10000 + parts[1] * 100 + parts[2])
        self.assertEqual(self.lib.version_string(), "%d.%d.%d" % tuple(parts))
        self.assertEqual(nccl_moe.__version__, "%d.%d.%d" % tuple(parts))
        with open(os.path.join(REPO_DIR, "pyproject.toml")) as project:
            self.assertIn('version = "%d.%d.%d"' % tuple(parts), project.read())

    def test_error_strings(self):
        self.assertEqual(self.lib.error_string(0), "no error")
        self.assertIn("invalid argument", self.lib.error_string(errors.NCCL_INVALID_ARGUMENT))

    def test_library_errors_carry_the_library_message(self):
        # ncclMoeCommCreate exchanges every rank's verdict on its configuration over the NCCL
        # communicator before failing (so that all ranks fail together), so without a GPU only
        # the checks that come first can run here: a NULL NCCL communicator. The configuration
        # checks themselves are C++ unit tests (tests/unit/test_checks.cc).
        import ctypes

        sizing = shapes.CommSizing(experts=0, hidden=128, max_tokens=64, max_topk=2,
                                   row_type=structs.NCCL_BFLOAT16)
        config = sizing.to_struct()
        created = ctypes.c_void_p()
        code = self.lib.ncclMoeCommCreate(None, ctypes.byref(config), ctypes.byref(created))
        with self.assertRaises(nccl_moe.NcclMoeError) as caught:
            self.lib.check(code, "ncclMoeCommCreate")
        error = caught.exception
        self.assertEqual(error.code, errors.NCCL_INVALID_ARGUMENT)
        self.assertEqual(error.code_name, "ncclInvalidArgument")
        self.assertEqual(error.call, "ncclMoeCommCreate")
        self.assertIn("comm is NULL", str(error))
        self.assertIsNone(created.value)

    def test_a_null_communicator_pointer_is_refused_in_python(self):
        sizing = shapes.CommSizing(experts=8, hidden=128, max_tokens=64, max_topk=2, row_type=3)
        with self.assertRaisesRegex(ValueError, "NULL"):
            MoeComm(0, sizing, library=self.lib)

    def test_null_arguments(self):
        import ctypes

        from nccl_moe import comm as capi
        handle = ctypes.c_void_p()
        code = self.lib.ncclMoeLayoutCreate(None, ctypes.byref(capi.topk_routing(1, 1, 0, 0)),
                                            ctypes.byref(capi.layout_options(False)),
                                            ctypes.byref(handle), None)
        with self.assertRaisesRegex(nccl_moe.NcclMoeError, "comm is NULL"):
            self.lib.check(code, "ncclMoeLayoutCreate")
        with self.assertRaisesRegex(nccl_moe.NcclMoeError, "handle is NULL"):
            self.lib.check(self.lib.ncclMoeHandleDestroy(None), "ncclMoeHandleDestroy")


class ErrorClasses(unittest.TestCase):
    def test_stale_message_becomes_stale_handle_error(self):
        error = errors.error_for("ncclMoeDispatch", errors.NCCL_INVALID_USAGE,
                                 "handle is stale: its communicator was destroyed")
        self.assertIsInstance(error, nccl_moe.StaleHandleError)
        self.assertIsInstance(error, nccl_moe.NcclMoeError)
        self.assertIn("ncclInvalidUsage", str(error))

    def test_remote_error(self):
        error = errors.error_for("ncclMoeCombine", errors.NCCL_REMOTE_ERROR, "rank 1 timed out")
        self.assertIsInstance(error, nccl_moe.RemoteError)

    def test_destroyed_comm_makes_handles_stale_in_python(self):
        comm = MoeComm.__new__(MoeComm)
        comm.generation, comm.destroyed = 7, True
        with self.assertRaisesRegex(nccl_moe.StaleHandleError, "generation 7"):
            comm.check_live()

    def test_library_errors_are_import_errors(self):
        self.assertTrue(issubclass(nccl_moe.LibraryNotFoundError, ImportError))
        self.assertTrue(issubclass(nccl_moe.TorchNotAvailableError, ImportError))


class _ResizeLibrary:
    """Records ncclMoeCommResize calls and answers with `code`; check() raises as the real one."""

    def __init__(self, code=0):
        self.code = code
        self.calls = []

    def ncclMoeCommResize(self, ptr, tokens):
        self.calls.append((ptr.value, tokens))
        return self.code

    def check(self, code, call, comm=None):
        if code != 0:
            raise errors.error_for(call, code, "rank 1 cannot resize its MoE communicator")


def _comm_over(library, sizing, address=0x1234):
    import ctypes

    comm = MoeComm.__new__(MoeComm)
    comm.lib, comm.sizing, comm.generation, comm.destroyed = library, sizing, 3, False
    comm._ptr = ctypes.c_void_p(address)
    return comm


class Resize(unittest.TestCase):
    SIZING = shapes.CommSizing(experts=8, hidden=128, max_tokens=64, max_topk=2, row_type=3)

    def test_only_the_token_count_may_change(self):
        import dataclasses

        comm = _comm_over(_ResizeLibrary(), self.SIZING)
        self.assertTrue(comm.can_resize_to(dataclasses.replace(self.SIZING, max_tokens=128)))
        self.assertFalse(comm.can_resize_to(dataclasses.replace(self.SIZING, max_topk=4)))
        self.assertFalse(comm.can_resize_to(dataclasses.replace(self.SIZING, max_tokens=128, fp8=True)))
        with self.assertRaisesRegex(ValueError, "only max_tokens"):
            comm.resized(dataclasses.replace(self.SIZING, max_topk=4))

    def test_a_library_without_resize_recreates(self):
        import dataclasses

        comm = _comm_over(object(), self.SIZING)
        self.assertFalse(comm.can_resize_to(dataclasses.replace(self.SIZING, max_tokens=128)))

    def test_resized_hands_the_native_communicator_on_and_makes_the_old_object_stale(self):
        import dataclasses

        library = _ResizeLibrary()
        comm = _comm_over(library, self.SIZING)
        bigger = dataclasses.replace(self.SIZING, max_tokens=256)
        successor = comm.resized(bigger)
        self.assertEqual(library.calls, [(0x1234, 256)])
        self.assertEqual(successor.ptr.value, 0x1234)
        self.assertEqual(successor.sizing, bigger)
        self.assertNotEqual(successor.generation, comm.generation)
        self.assertFalse(successor.destroyed)
        with self.assertRaises(nccl_moe.StaleHandleError):
            comm.check_live()
        successor.check_live()

    def test_a_refused_resize_leaves_the_communicator_live(self):
        import dataclasses

        comm = _comm_over(_ResizeLibrary(code=errors.NCCL_INVALID_USAGE), self.SIZING)
        with self.assertRaisesRegex(nccl_moe.NcclMoeError, "cannot resize"):
            comm.resized(dataclasses.replace(self.SIZING, max_tokens=256))
        comm.check_live()
        self.assertEqual(comm.ptr.value, 0x1234)


if __name__ == "__main__":
    unittest.main()
