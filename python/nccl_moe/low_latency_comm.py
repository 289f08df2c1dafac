"""Low-latency calls on raw pointers, and the receive hooks of split calls (no PyTorch).

``LowLatencyOps`` turns one LL dispatch or combine into its library call: the plain call (both
halves in one kernel), or the send half alone, which returns a :class:`ReceiveHook`; calling the
hook enqueues the receive half on the caller's current stream (DeepEP's ``return_recv_hook``).

The library's receive halves take no arguments: each completes the *oldest* outstanding send half
of its kind. A Python hook names one operation, so the order is checked here: a hook called out of
order, twice, or a third send half while two await their hooks raises :class:`HookOrderError`
before anything is enqueued, instead of completing another operation's outputs. The rules are the
library's (docs/low_latency.md section 6.2): at most two outstanding send halves per kind, a plain
call only when none of its kind is outstanding, and a combine only once its dispatch was received.

Pointers are ints (0 for NULL); streams are ``cudaStream_t`` values as ints.
"""
import collections

from . import structs

KINDS = ("dispatch", "combine")
MAX_OUTSTANDING = 2


class HookOrderError(RuntimeError):
    """An LL receive hook was called out of order or twice, or too many send halves are waiting."""


class ReceiveHook:
    """Completes one split LL operation. ``hook()`` enqueues its receive half on the current CUDA
    stream; the operation's outputs are valid on that stream from then on. Hooks of one kind are
    called in the order of their send halves, each once; ``done`` tells whether it was called."""

    __slots__ = ("_ops", "kind", "sequence", "done")

    def __init__(self, ops, kind, sequence):
        self._ops = ops
        self.kind = kind
        self.sequence = sequence  # 1 for the first send half of this kind on the buffer
        self.done = False

    def __call__(self):
        self._ops.receive(self)

    def __repr__(self):
        return "nccl_moe.ReceiveHook(%s #%d, %s)" % (self.kind, self.sequence, "done" if self.done else "pending")


class LowLatencyOps:
    """The LL calls of one communicator. ``comm`` is a MoeComm (or anything with its
    ``low_latency(kind, half, args, stream)``); ``current_stream`` returns the stream (int) a hook
    enqueues its receive half on."""

    def __init__(self, comm, current_stream):
        self.comm = comm
        self._current_stream = current_stream
        self._pending = {kind: collections.deque() for kind in KINDS}
        self._sent = {kind: 0 for kind in KINDS}

    def outstanding(self, kind):
        """Send halves of ``kind`` whose hook has not been called yet."""
        return len(self._pending[kind])

    def _start(self, kind, args, send_only, stream):
        pending = self._pending[kind]
        if send_only and len(pending) >= MAX_OUTSTANDING:
            raise HookOrderError(
                "a third low-latency %s send half while %d await their hooks (#%s): call the oldest hook "
                "first (at most %d outstanding per kind)"
                % (kind, len(pending), ", #".join(str(h.sequence) for h in pending), MAX_OUTSTANDING))
        if not send_only and pending:
            raise HookOrderError(
                "a plain low-latency %s while %d send half(s) of its kind await their hook (#%d first): it "
                "would complete before them; call their hooks first" % (kind, len(pending), pending[0].sequence))
        self.comm.low_latency(kind, "send" if send_only else "both", args,
                              self._current_stream() if stream is None else stream)
        self._sent[kind] += 1
        if not send_only:
            return None
        hook = ReceiveHook(self, kind, self._sent[kind])
        pending.append(hook)
        return hook

    def receive(self, hook):
        """The receive half of ``hook``'s operation, on the current stream (what ``hook()`` does)."""
        if hook.done:
            raise HookOrderError("the receive hook of low-latency %s #%d was already called" % (hook.kind, hook.sequence))
        pending = self._pending[hook.kind]
        if hook not in pending:
            raise HookOrderError("this receive hook (%s #%d) belongs to another low-latency buffer"
                                 % (hook.kind, hook.sequence))
        if pending[0] is not hook:
            raise HookOrderError(
                "low-latency %s #%d's hook called before the hook of the older %s #%d: receive halves complete "
                "in the order of their send halves" % (hook.kind, hook.sequence, hook.kind, pending[0].sequence))
        self.comm.low_latency(hook.kind, "receive", None, self._current_stream())
        pending.popleft()
        hook.done = True

    def dispatch(self, *, num_tokens, topk, x, topk_idx, recv_x, recv_scales, recv_count, recv_src_info,
                 send_only=False, stream=None):
        """ncclMoeLowLatencyDispatch, or its send half with ``send_only`` (returns the hook)."""
        args = structs.MoeLowLatencyDispatchArgs(
            numTokens=int(num_tokens), topk=int(topk), x=x or None, topkIdx=topk_idx or None,
            recvX=recv_x or None, recvScales=recv_scales or None, recvCount=recv_count or None,
            recvSrcInfo=recv_src_info or None)
        return self._start("dispatch", args, send_only, stream)

    def combine(self, *, num_tokens, topk, y, recv_count, recv_src_info, topk_idx, weights, out,
                send_only=False, stream=None, dispatch_hook=None):
        """ncclMoeLowLatencyCombine (weights 0: unweighted), or its send half with ``send_only``.
        ``dispatch_hook``: the hook of the dispatch whose layout y follows, which must have been
        called (the library's rule: the combine of a dispatch comes after its receive half)."""
        if dispatch_hook is not None and not dispatch_hook.done:
            raise HookOrderError(
                "combine of low-latency dispatch #%d before its receive hook was called: its outputs (the "
                "layout the combine reads) are not written yet" % dispatch_hook.sequence)
        args = structs.MoeLowLatencyCombineArgs(
            numTokens=int(num_tokens), topk=int(topk), y=y or None, recvCount=recv_count or None,
            recvSrcInfo=recv_src_info or None, topkIdx=topk_idx or None, weights=weights or None,
            out=out or None)
        return self._start("combine", args, send_only, stream)
