"""A MoE communicator and its handles over the C API, with raw pointers (no PyTorch).

``MoeComm`` owns one ``ncclMoeComm_t``. It carries a process-wide generation number and a
``destroyed`` flag: a handle remembers the communicator object it came from, so using it after the
communicator was replaced or resized (buffers grown) raises :class:`StaleHandleError` in Python,
before the library is called. The library detects stale handles too, but a new communicator may be allocated
at the address of the old one; the Python check does not depend on addresses.

Pointers are plain ints (0 or None for NULL); streams are ``cudaStream_t`` values as ints.
"""
import ctypes
import dataclasses
import itertools

from . import structs
from .errors import StaleHandleError
from .library import load_library

_generations = itertools.count(1)


class MoeComm:
    """One ncclMoeComm_t. Creation and destruction are collective over the NCCL communicator."""

    def __init__(self, nccl_comm, sizing, library=None):
        self.lib = library or load_library()
        self.sizing = sizing
        self.generation = next(_generations)
        self.destroyed = False
        self._ptr = ctypes.c_void_p()
        config = sizing.to_struct()
        if not nccl_comm:
            raise ValueError("the NCCL communicator pointer is NULL")
        code = self.lib.ncclMoeCommCreate(ctypes.c_void_p(int(nccl_comm)), ctypes.byref(config),
                                          ctypes.byref(self._ptr))
        self.lib.check(code, "ncclMoeCommCreate")

    @property
    def ptr(self):
        return self._ptr

    def destroy(self):
        """Collective. Idempotent. Handles made from this communicator become stale."""
        if self.destroyed:
            return
        self.destroyed = True
        code = self.lib.ncclMoeCommDestroy(self._ptr)
        self.lib.check(code, "ncclMoeCommDestroy")

    def can_resize_to(self, sizing):
        """Whether :meth:`resized` serves ``sizing``: only maxTokensPerRank changes, and the
        library has ncclMoeCommResize."""
        return (not self.destroyed and getattr(self.lib, "ncclMoeCommResize", None) is not None
                and dataclasses.replace(self.sizing, max_tokens=sizing.max_tokens) == sizing)

    def resized(self, sizing):
        """Collective: ncclMoeCommResize to ``sizing.max_tokens``. Returns a new MoeComm object of
        its own generation for the same native communicator; this object becomes stale, as after
        :meth:`destroy` (its handles raise StaleHandleError), without destroying anything. On a
        refused resize (the library names the cause) this object stays live and unchanged."""
        self.check_live("communicator")
        if not self.can_resize_to(sizing):
            raise ValueError("%r cannot be resized to %r: only max_tokens may change" % (self.sizing, sizing))
        self._check(self.lib.ncclMoeCommResize(self._ptr, int(sizing.max_tokens)), "ncclMoeCommResize")
        successor = MoeComm.__new__(MoeComm)
        successor.lib = self.lib
        successor.sizing = sizing
        successor.generation = next(_generations)
        successor.destroyed = False
        successor._ptr = self._ptr
        self.destroyed = True  # the native communicator now belongs to the successor
        self._ptr = ctypes.c_void_p()
        return successor

    def _check(self, code, call):
        self.lib.check(code, call, self._ptr)

    def check_live(self, what="handle"):
        if self.destroyed:
            raise StaleHandleError(
                "nccl_moe", 5,
                "%s is stale: it was made with MoE communicator generation %d, which was destroyed "
                "(buffers were reallocated to grow them, or the buffer was reset); redo the "
                "dispatch with the current buffer" % (what, self.generation))

    def async_error(self):
        """Raises the device-side failure (a peer timeout) recorded on this communicator, if any."""
        self.check_live("communicator")
        result = ctypes.c_int(0)
        self._check(self.lib.ncclMoeCommGetAsyncError(self._ptr, ctypes.byref(result)),
                    "ncclMoeCommGetAsyncError")
        if result.value != 0:
            self.lib.check(result.value, "ncclMoeCommGetAsyncError", self._ptr)

    # ---- layout and handles ------------------------------------------------------------------

    def layout(self, routing, options, stream, reuse=None):
        """ncclMoeLayoutCreate. ``reuse``: a live handle pointer (int) of this communicator whose
        memory is reused in place. Returns the handle pointer (int)."""
        self.check_live("communicator")
        handle = ctypes.c_void_p(reuse or None)
        code = self.lib.ncclMoeLayoutCreate(self._ptr, ctypes.byref(routing), ctypes.byref(options),
                                            ctypes.byref(handle), ctypes.c_void_p(stream or None))
        if code != 0:
            if reuse and handle.value:
                # The reused handle is still live; the caller must not lose it.
                self.destroy_handle(handle.value, quiet=True)
            self._check(code, "ncclMoeLayoutCreate")
        return handle.value

    def get_counts(self, handle, local_experts):
        """ncclMoeHandleGetCounts (waits on the host for the layout's counts): (rows, tokens per local
        expert, overflow)."""
        self.check_live()
        rows = ctypes.c_int64(0)
        per_expert = (ctypes.c_int64 * max(1, local_experts))()
        overflow = ctypes.c_int32(0)
        code = self.lib.ncclMoeHandleGetCounts(ctypes.c_void_p(handle), ctypes.byref(rows),
                                               per_expert, ctypes.byref(overflow))
        self._check(code, "ncclMoeHandleGetCounts")
        return rows.value, [int(per_expert[i]) for i in range(local_experts)], bool(overflow.value)

    def device_counts(self, handle):
        """ncclMoeHandleGetDeviceCounts: device addresses (ints) of recvRows (int64),
        tokensPerExpert (int64 [L]) and overflow (int32), valid while the handle lives."""
        self.check_live()
        rows = ctypes.POINTER(ctypes.c_int64)()
        per_expert = ctypes.POINTER(ctypes.c_int64)()
        overflow = ctypes.POINTER(ctypes.c_int32)()
        code = self.lib.ncclMoeHandleGetDeviceCounts(ctypes.c_void_p(handle), ctypes.byref(rows),
                                                     ctypes.byref(per_expert), ctypes.byref(overflow))
        self._check(code, "ncclMoeHandleGetDeviceCounts")

        def address(pointer):
            return ctypes.cast(pointer, ctypes.c_void_p).value or 0

        return address(rows), address(per_expert), address(overflow)

    def destroy_handle(self, handle, quiet=False):
        """ncclMoeHandleDestroy (waits for the device). Allowed after the communicator died."""
        code = self.lib.ncclMoeHandleDestroy(ctypes.c_void_p(handle))
        if not quiet:
            self.lib.check(code, "ncclMoeHandleDestroy")

    # ---- data movement -----------------------------------------------------------------------

    def dispatch(self, handle, args, stream):
        self.check_live()
        code = self.lib.ncclMoeDispatch(self._ptr, ctypes.c_void_p(handle), ctypes.byref(args),
                                        ctypes.c_void_p(stream or None))
        self._check(code, "ncclMoeDispatch")

    def combine(self, handle, args, stream):
        self.check_live()
        code = self.lib.ncclMoeCombine(self._ptr, ctypes.c_void_p(handle), ctypes.byref(args),
                                       ctypes.c_void_p(stream or None))
        self._check(code, "ncclMoeCombine")

    # ---- what the communicator became ------------------------------------------------------

    def info(self):
        """ncclMoeCommGetInfo: the structs.MoeCommInfo of this communicator (no synchronisation)."""
        self.check_live("communicator")
        info = structs.MoeCommInfo()
        self._check(self.lib.ncclMoeCommGetInfo(self._ptr, ctypes.byref(info)), "ncclMoeCommGetInfo")
        return info

    # ---- low-latency mode (docs/low_latency.md) ----------------------------------------------

    _LL_CALLS = {
        ("dispatch", "both"): "ncclMoeLowLatencyDispatch",
        ("dispatch", "send"): "ncclMoeLowLatencyDispatchSend",
        ("dispatch", "receive"): "ncclMoeLowLatencyDispatchRecv",
        ("combine", "both"): "ncclMoeLowLatencyCombine",
        ("combine", "send"): "ncclMoeLowLatencyCombineSend",
        ("combine", "receive"): "ncclMoeLowLatencyCombineRecv",
    }

    def low_latency(self, kind, half, args, stream):
        """One LL call: ``kind`` "dispatch" or "combine", ``half`` "both" (the plain call), "send"
        or "receive" (``args`` None: the receive half completes the oldest send half)."""
        self.check_live("communicator")
        name = self._LL_CALLS[(kind, half)]
        function = getattr(self.lib, name)
        stream = ctypes.c_void_p(stream or None)
        code = function(self._ptr, stream) if half == "receive" else function(self._ptr, ctypes.byref(args), stream)
        self._check(code, name)


def topk_routing(num_tokens, topk, topk_idx, topk_probs):
    """ncclMoeRouting_t of the top-k format (pointers as ints, 0 for none)."""
    return structs.MoeRouting(format=structs.ROUTING_TOPK, numTokens=int(num_tokens), topk=int(topk),
                              topkIdx=topk_idx or None, topkProbs=topk_probs or None)


def map_routing(num_tokens, routing_map, dense_probs):
    """ncclMoeRouting_t of the routing-map format."""
    return structs.MoeRouting(format=structs.ROUTING_MAP, numTokens=int(num_tokens), topk=0,
                              routingMap=routing_map or None, denseProbs=dense_probs or None)


def layout_options(expert_major, pad_multiple=0, row_budget=-1):
    return structs.MoeLayoutOptions(
        layout=structs.LAYOUT_EXPERT_MAJOR if expert_major else structs.LAYOUT_PER_RANK,
        padMultiple=int(pad_multiple or 0), rowBudget=-1 if row_budget is None else int(row_budget))
