"""Shared setup of the CPU tests: import nccl_moe from this checkout, find the repository."""
import os
import sys

PYTHON_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
REPO_DIR = os.path.dirname(PYTHON_DIR)
if PYTHON_DIR not in sys.path:
    sys.path.insert(0, PYTHON_DIR)


def load_library_or_skip():
    """The built libnccl_moe.so (tools/build.sh, or NCCL_MOE_LIBRARY), or the calling test class is
    skipped with the reason (no GPU is needed to load it)."""
    import unittest

    import nccl_moe

    try:
        return nccl_moe.load_library()
    except nccl_moe.LibraryNotFoundError as error:
        raise unittest.SkipTest("libnccl_moe.so not built: %s" % str(error).splitlines()[0])


def run_python(code, env=None):
    """Runs ``code`` in a fresh interpreter with this checkout's package on the path."""
    import subprocess

    environ = dict(os.environ)
    environ["PYTHONPATH"] = PYTHON_DIR + os.pathsep + environ.get("PYTHONPATH", "")
    if env:
        environ.update(env)
    return subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True,
                          timeout=120)
