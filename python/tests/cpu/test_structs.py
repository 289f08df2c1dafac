"""The ctypes structs match include/nccl_moe.h: sizes, offsets, INITIALIZER values, constants.

Compiles tests/cpu/struct_layout.c against the header with the C compiler; skipped where there is
no compiler or no CUDA/NCCL headers (the header includes cuda_runtime.h and nccl.h).
"""
import ctypes
import os
import shutil
import subprocess
import tempfile
import unittest

from _support import REPO_DIR

from nccl_moe import errors, structs

HERE = os.path.dirname(os.path.abspath(__file__))


def _include_dirs():
    dirs = [os.path.join(REPO_DIR, "include")]
    cuda = os.environ.get("CUDA_HOME", "/usr/local/cuda")
    dirs.append(os.path.join(cuda, "include"))
    nccl = os.environ.get("NCCL_ROOT")
    if nccl:
        dirs.append(os.path.join(nccl, "include"))
    return dirs


def _compile_and_run():
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise unittest.SkipTest("no C compiler")
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, "struct_layout")
        command = [compiler, "-std=c11", "-o", exe, os.path.join(HERE, "struct_layout.c")]
        for folder in _include_dirs():
            command += ["-I", folder]
        built = subprocess.run(command, capture_output=True, text=True)
        if built.returncode != 0:
            if "cuda_runtime.h" in built.stderr or "nccl.h" in built.stderr:
                raise unittest.SkipTest("CUDA/NCCL headers not found: " + built.stderr.strip()[:200])
            raise AssertionError("compiling struct_layout.c failed:\n" + built.stderr)
        output = subprocess.run([exe], capture_output=True, text=True, check=True).stdout
    values = {}
    for line in output.splitlines():
        key, value = line.rsplit(" ", 1)
        values[key] = int(value)
    return values


class StructLayout(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = _compile_and_run()

    def test_sizes_and_offsets(self):
        for c_name, cls in structs.C_STRUCTS.items():
            with self.subTest(struct=c_name):
                self.assertEqual(ctypes.sizeof(cls), self.c["%s.sizeof" % c_name])
                c_fields = sorted(k.split(".")[1] for k in self.c if k.startswith(c_name + ".")
                                  and k.endswith(".offset"))
                self.assertEqual(sorted(name for name, _ in cls._fields_), c_fields)
                for name, _ in cls._fields_:
                    self.assertEqual(getattr(cls, name).offset,
                                     self.c["%s.%s.offset" % (c_name, name)], name)

    def test_initializers(self):
        for c_name, cls in structs.C_STRUCTS.items():
            instance = cls()
            for name, ctype in cls._fields_:
                key = "%s.%s.init" % (c_name, name)
                with self.subTest(field=key):
                    value = getattr(instance, name)
                    if ctype is ctypes.c_void_p:
                        self.assertEqual(int(value is not None and value != 0), self.c[key])
                    else:
                        self.assertEqual(value, self.c[key])

    def test_constants(self):
        self.assertEqual(structs.NCCL_MOE_UNDEF_INT, self.c["NCCL_MOE_UNDEF_INT"])
        self.assertEqual(structs.NCCL_MOE_MAGIC, self.c["NCCL_MOE_MAGIC"])
        self.assertEqual(structs.NCCL_MOE_STRUCT_VERSION, self.c["NCCL_MOE_STRUCT_VERSION"])
        self.assertEqual(structs.ROUTING_TOPK, self.c["NCCL_MOE_ROUTING_TOPK"])
        self.assertEqual(structs.ROUTING_MAP, self.c["NCCL_MOE_ROUTING_MAP"])
        self.assertEqual(structs.LAYOUT_PER_RANK, self.c["NCCL_MOE_LAYOUT_PER_RANK"])
        self.assertEqual(structs.LAYOUT_EXPERT_MAJOR, self.c["NCCL_MOE_LAYOUT_EXPERT_MAJOR"])
        self.assertEqual(structs.NCCL_FLOAT32, self.c["ncclFloat32"])
        self.assertEqual(structs.NCCL_BFLOAT16, self.c["ncclBfloat16"])
        self.assertEqual(errors.NCCL_INVALID_ARGUMENT, self.c["ncclInvalidArgument"])
        self.assertEqual(errors.NCCL_INVALID_USAGE, self.c["ncclInvalidUsage"])
        self.assertEqual(errors.NCCL_REMOTE_ERROR, self.c["ncclRemoteError"])


class StructFields(unittest.TestCase):
    def test_keyword_fields_and_typos(self):
        options = structs.MoeLayoutOptions(layout=structs.LAYOUT_EXPERT_MAJOR, rowBudget=128)
        self.assertEqual((options.layout, options.padMultiple, options.rowBudget), (1, 0, 128))
        with self.assertRaises(AttributeError):
            structs.MoeLayoutOptions(row_budget=1)

    def test_pointer_fields_take_ints_and_none(self):
        args = structs.MoeDispatchArgs(x=0x1000, recvX=None)
        self.assertEqual(args.x, 0x1000)
        self.assertIsNone(args.recvX)


if __name__ == "__main__":
    unittest.main()
