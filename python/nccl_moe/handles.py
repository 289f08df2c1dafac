"""Dispatch handles as Python objects, and the pool that recycles their device memory.

Why a pool: ``ncclMoeHandleDestroy`` waits for the whole device (work already queued may still
read the handle), and a training step frees one handle per MoE layer and micro-batch. Waiting for
the device there would stop the CPU from running ahead of the GPU. Instead a freed handle goes
back to its communicator's pool with a CUDA event recorded on every stream that used it; the next
layout reuses it in place (``ncclMoeLayoutCreate`` with a live handle, the allocation-free path)
after making its stream wait for those events. Handles are destroyed for real only when the pool
is full or its communicator is destroyed.
"""
import threading

from .torch_support import torch

POOL_CAPACITY = 64


class HandlePool:
    """Free native handles of one MoeComm, each with the events its last uses recorded."""

    def __init__(self, comm, capacity=POOL_CAPACITY):
        self.comm = comm
        self.capacity = capacity
        self._free = []
        self._lock = threading.RLock()  # a handle may be freed (by the GC) inside give()

    def take(self, stream):
        """A free native handle (int) made safe to rewrite on ``stream``, or None."""
        with self._lock:
            if not self._free:
                return None
            native, events = self._free.pop()
        for event in events:
            stream.wait_event(event)
        return native

    def give(self, native, streams):
        """Returns a handle whose last uses were enqueued on ``streams``."""
        if self.comm.destroyed:
            self.comm.destroy_handle(native, quiet=True)
            return
        events = []
        for stream in streams:
            event = torch.cuda.Event()
            event.record(stream)
            events.append(event)
        with self._lock:
            if len(self._free) < self.capacity:
                self._free.append((native, events))
                return
        self.comm.destroy_handle(native, quiet=True)

    def close(self):
        """Destroys every pooled handle (waits for the device). Call before destroying the comm."""
        with self._lock:
            free, self._free = self._free, []
        for native, _ in free:
            self.comm.destroy_handle(native, quiet=True)


class Handle:
    """One layout (``ncclMoeHandle_t``) plus what the Python side needs to size later calls.

    Kept alive by autograd contexts and by Megatron's dispatcher; when the last reference goes,
    the native handle returns to the pool. Tensors viewing its device counts keep it alive too.
    """

    def __init__(self, buffer, comm, native, *, num_tokens, topk, routing_format, expert_major,
                 pad_multiple, row_budget, has_probs, stream):
        self.buffer = buffer
        self.comm = comm
        self.native = native
        self.num_tokens = int(num_tokens)
        self.topk = int(topk)
        self.routing_format = routing_format
        self.expert_major = bool(expert_major)
        self.pad_multiple = pad_multiple
        self.row_budget = row_budget
        self.has_probs = bool(has_probs)
        self.rows = None  # rows a dispatch writes into: counted rows (blocking) or the budget
        self.tokens_per_expert = None  # host list after counts were read
        self.overflow = None
        self.dispatch_rows = None  # rows allocated by the forward dispatch
        self._streams = {}
        self._pool = buffer.pool
        self.used_on(stream)

    @property
    def generation(self):
        return self.comm.generation

    def used_on(self, stream):
        self._streams[stream.cuda_stream] = stream

    def check_live(self):
        self.comm.check_live("this dispatch handle")

    def __del__(self):
        native, self.native = getattr(self, "native", None), None
        if not native:
            return
        try:
            self._pool.give(native, list(self._streams.values()))
        except Exception:  # interpreter shutdown: the library or torch may already be gone
            pass

    def __repr__(self):
        return ("nccl_moe.Handle(generation=%d, tokens=%d, %s, rows=%s)"
                % (self.generation, self.num_tokens,
                   "expert-major" if self.expert_major else "per-rank", self.rows))


class HybridEPHandle(tuple):
    """The handle HybridEPDispatch returns: a tuple whose last element is the int32 overflow flag
    on the device (Megatron reads ``handle[-1]``), the one before it the device per-expert counts,
    and whose first element is the :class:`Handle`."""

    def __new__(cls, handle, tokens_per_expert_device, overflow_device):
        return super().__new__(cls, (handle, tokens_per_expert_device, overflow_device))

    @property
    def layout(self):
        return self[0]
