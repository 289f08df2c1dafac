"""Finding, loading and binding libnccl_moe.so with ctypes.

No compiler and no PyTorch headers are involved, so one installed package serves every PyTorch
version. The library is looked up in this order:

1. a copy already loaded in the process (for example by NCCL as a plugin): loading a second copy
   would give two sets of live communicators and handles;
2. the path in ``NCCL_MOE_LIBRARY`` (an explicit choice: if it does not load, that is an error,
   there is no silent fallback);
3. next to the package (``nccl_moe/libnccl_moe.so*`` or ``nccl_moe/lib/``): where ``pip install .``
   bundles the library it builds, and where ``cmake --install`` links the installed one;
4. the build tree of a source checkout (``<repo>/build/src``), so ``PYTHONPATH=python`` works
   right after ``tools/build.sh``;
5. the dynamic linker's search path (``LD_LIBRARY_PATH``, ldconfig).

Load PyTorch before the library (``nccl_moe.fused_a2a`` does): libnccl_moe.so links
``libnccl.so.2`` dynamically, and the NCCL that PyTorch already loaded then satisfies it, so the
``ncclComm_t`` taken from a ProcessGroup is understood by the same NCCL.
"""
import ctypes
import os
import threading

from .errors import LibraryNotFoundError, NcclMoeError, error_for

LIBRARY_ENV = "NCCL_MOE_LIBRARY"
_NAMES = ("libnccl_moe.so", "libnccl_moe.so.0")

_lock = threading.Lock()
_loaded = None


def mapped_libraries(fragment):
    """Distinct files whose name contains ``fragment`` mapped into this process (Linux)."""
    found = []
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                parts = line.split(None, 5)
                if len(parts) == 6:
                    path = parts[5].strip()
                    if fragment in os.path.basename(path) and path not in found:
                        found.append(path)
    except OSError:
        pass
    return found


def _package_dir():
    return os.path.dirname(os.path.abspath(__file__))


def candidate_paths(environ=None):
    """Where the library is looked for, in order, as (description, path) pairs."""
    environ = os.environ if environ is None else environ
    candidates = []
    for path in mapped_libraries("libnccl_moe.so"):
        candidates.append(("already loaded", path))
    explicit = environ.get(LIBRARY_ENV)
    if explicit:
        candidates.append((LIBRARY_ENV, explicit))
        return candidates  # an explicit choice is never replaced by a guess
    here = _package_dir()
    for folder in (here, os.path.join(here, "lib")):
        for name in _NAMES:
            candidates.append(("next to the package", os.path.join(folder, name)))
    repo = os.path.dirname(os.path.dirname(here))
    candidates.append(("build tree", os.path.join(repo, "build", "src", "libnccl_moe.so")))
    for name in _NAMES:
        candidates.append(("dynamic linker search path", name))
    return candidates


def _bind(lib):
    """Declares argument and result types; optional entry points become None when absent."""
    c_int, c_void_p, c_char_p = ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p
    p_i64, p_i32 = ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_int32)
    signatures = {
        "ncclMoeGetVersion": (c_int, [ctypes.POINTER(c_int)]),
        "ncclMoeGetErrorString": (c_char_p, [c_int]),
        "ncclMoeGetLastError": (c_char_p, [c_void_p]),
        "ncclMoeCommCreate": (c_int, [c_void_p, c_void_p, ctypes.POINTER(c_void_p)]),
        "ncclMoeCommDestroy": (c_int, [c_void_p]),
        "ncclMoeCommGetAsyncError": (c_int, [c_void_p, ctypes.POINTER(c_int)]),
        "ncclMoeLayoutCreate": (c_int, [c_void_p, c_void_p, c_void_p, ctypes.POINTER(c_void_p), c_void_p]),
        "ncclMoeHandleGetCounts": (c_int, [c_void_p, p_i64, p_i64, p_i32]),
        "ncclMoeHandleGetDeviceCounts": (
            c_int,
            [c_void_p, ctypes.POINTER(p_i64), ctypes.POINTER(p_i64), ctypes.POINTER(p_i32)],
        ),
        "ncclMoeHandleDestroy": (c_int, [c_void_p]),
        "ncclMoeDispatch": (c_int, [c_void_p, c_void_p, c_void_p, c_void_p]),
        "ncclMoeCombine": (c_int, [c_void_p, c_void_p, c_void_p, c_void_p]),
        "ncclMoeCommGetInfo": (c_int, [c_void_p, c_void_p]),
        "ncclMoeCommResize": (c_int, [c_void_p, c_int]),
        # Low-latency mode (docs/low_latency.md): (comm, args, stream); a receive half (comm, stream).
        "ncclMoeLowLatencyDispatch": (c_int, [c_void_p, c_void_p, c_void_p]),
        "ncclMoeLowLatencyDispatchSend": (c_int, [c_void_p, c_void_p, c_void_p]),
        "ncclMoeLowLatencyDispatchRecv": (c_int, [c_void_p, c_void_p]),
        "ncclMoeLowLatencyCombine": (c_int, [c_void_p, c_void_p, c_void_p]),
        "ncclMoeLowLatencyCombineSend": (c_int, [c_void_p, c_void_p, c_void_p]),
        "ncclMoeLowLatencyCombineRecv": (c_int, [c_void_p, c_void_p]),
    }
    # Entry points a library built before them lacks: bound as None, an error only when used.
    optional = {"ncclMoeCommGetAsyncError", "ncclMoeCommGetInfo", "ncclMoeCommResize", "ncclMoeLowLatencyDispatch",
                "ncclMoeLowLatencyDispatchSend", "ncclMoeLowLatencyDispatchRecv", "ncclMoeLowLatencyCombine",
                "ncclMoeLowLatencyCombineSend", "ncclMoeLowLatencyCombineRecv"}
    functions = {}
    for name, (restype, argtypes) in signatures.items():
        try:
            function = getattr(lib, name)
        except AttributeError:
            if name in optional:
                functions[name] = None
                continue
            raise LibraryNotFoundError(
                "%s does not export %s: it is not a libnccl_moe.so of API version 1 "
                "(rebuild it with tools/build.sh)" % (lib._name, name))
        function.restype = restype
        function.argtypes = argtypes
        functions[name] = function
    return functions


class Library:
    """The loaded library: its path, its version and the bound entry points."""

    def __init__(self, path, handle):
        self.path = path
        self._handle = handle
        self.functions = _bind(handle)
        version = ctypes.c_int(0)
        self.functions["ncclMoeGetVersion"](ctypes.byref(version))
        self.version = version.value

    def __getattr__(self, name):
        functions = self.__dict__.get("functions", {})
        if name not in functions:
            raise AttributeError(name)
        function = functions[name]
        if function is None:
            raise NcclMoeError(name, 5, "this libnccl_moe.so does not provide %s (rebuild it)" % name)
        return function

    def version_string(self):
        return "%d.%d.%d" % (self.version // 10000, self.version // 100 % 100, self.version % 100)

    def error_string(self, code):
        text = self.functions["ncclMoeGetErrorString"](int(code))
        return text.decode(errors="replace") if text else ""

    def last_error(self, comm=None):
        text = self.functions["ncclMoeGetLastError"](comm)
        return text.decode(errors="replace") if text else ""

    def check(self, code, call, comm=None):
        """Raises the exception for a failing result, with the library's last-error message."""
        if code != 0:
            detail = self.last_error(comm) or self.error_string(code)
            raise error_for(call, code, detail)


def load_library(environ=None):
    """The process-wide Library, loading it on first use. Raises LibraryNotFoundError."""
    global _loaded
    with _lock:
        if _loaded is not None:
            return _loaded
        tried = []
        for origin, path in candidate_paths(environ):
            is_file_path = os.sep in path
            if is_file_path and not os.path.exists(path):
                tried.append("%s: %s (no such file)" % (origin, path))
                continue
            try:
                handle = ctypes.CDLL(path)
            except OSError as error:
                tried.append("%s: %s (%s)" % (origin, path, error))
                continue
            _loaded = Library(path, handle)
            return _loaded
        raise LibraryNotFoundError(
            "libnccl_moe.so was not found. Build it (tools/build.sh), then point %s at it, put it "
            "next to the nccl_moe package, or add its folder to LD_LIBRARY_PATH. Tried:\n  %s"
            % (LIBRARY_ENV, "\n  ".join(tried)))


def is_available():
    """True when the library can be loaded (loads it as a side effect)."""
    try:
        load_library()
        return True
    except LibraryNotFoundError:
        return False


def _reset_for_tests():
    global _loaded
    _loaded = None
