"""Megatron-Core's third flex backend, ``ncclep``, served by libnccl_moe.

Megatron-Core 0.19 serves ``moe_flex_dispatcher_backend="ncclep"`` through TransformerEngine's NCCL
EP, which needs NCCL >= 2.30 with GIN (an InfiniBand/RoCE NIC). These functions have the names,
arguments and results Megatron's ``_NCCLEPManager`` uses (its ``fused_a2a.py`` documents them), and
run on any NCCL the process already uses, on every network NCCL runs on:

* ``ensure_nccl_ep_bootstrapped(ep_group, num_experts, max_tokens_per_rank,
  recv_capacity_per_rank, hidden_dim, num_sms=0, zero_copy=False)``: the process-wide context,
  once (collective on ``ep_group``; later calls are no-ops); ``nccl_ep_finalize()`` tears it down
  (collective, idempotent, safe when never bootstrapped).
* ``new_nccl_ep_buffer(top_k, max_tokens_per_rank, recv_capacity_per_rank, hidden_dim,
  num_local_experts, alignment=0)``: the state of one dispatch/combine pair.
* ``nccl_ep_dispatch(buffer, tokens, topk_idx, topk_weights, recv_tokens=None,
  recv_topk_weights=None)`` returns ``(recv_tokens [recv_capacity_per_rank, H], tokens_per_expert
  int32 [L] on the device, dispatched_probs fp32 [recv_capacity_per_rank])``: one row per (token,
  local expert), grouped by local expert (inside a group by source rank, then token), each group
  padded to ``alignment`` with zero rows, the counts alignment-padded. No host synchronisation:
  the call can be captured in a CUDA graph once the context exists.
* ``nccl_ep_combine(buffer, expert_out, num_local_tokens=None, grad_out=None)``: the unweighted
  sum of each token's rows back in local token order (rows past the counted ones are ignored).
* Both are autograd functions: dispatch's backward is a combine of the rows' gradient (and of the
  per-row probs' gradient back to ``[T, K]``), combine's backward a dispatch of the gradient into
  the rows it came from (written into ``grad_out`` when the caller passes one).
* ``alloc_ep_symm_buffer(shape, dtype, ep_group)``: a zeroed device tensor. NCCL EP needs its
  buffers in NCCL symmetric memory; libnccl_moe moves rows through its own peer-visible buffers,
  so any device tensor serves. Caller-owned ``recv_tokens``, ``recv_topk_weights`` and
  ``grad_out`` are written in place, as with NCCL EP.

Where ours differs: NCCL EP traps the GPU when a rank receives more than
``recv_capacity_per_rank`` rows. We drop the rows past the capacity (as HybridEP's budgeted mode
does) and raise ``RuntimeError`` naming the capacity at the next ``nccl_ep_dispatch`` or
``nccl_ep_finalize`` after the GPU has reported it, without a synchronisation per call.
"""
from .torch_support import torch  # raises TorchNotAvailableError first when PyTorch is missing

from . import ops, shapes  # noqa: E402
from .buffer import CommBuffer  # noqa: E402
from .torch_support import current_stream, resolve_group, row_type_of  # noqa: E402

__all__ = [
    "ensure_nccl_ep_bootstrapped", "nccl_ep_finalize", "alloc_ep_symm_buffer",
    "new_nccl_ep_buffer", "nccl_ep_dispatch", "nccl_ep_combine", "NcclEpBuffer",
]

_context = None


class _OverflowWatch:
    """Overflow flags of recent dispatches, copied to pinned host memory behind an event, read
    only once the event has completed: a dropped row is reported without a host synchronisation
    in the call that dropped it."""

    def __init__(self):
        self._pending = []

    def watch(self, overflow_device, capacity):
        if torch.cuda.is_current_stream_capturing():
            return  # a captured copy would report the capture, not a replay
        host = torch.empty(1, dtype=torch.int32, pin_memory=True)
        host.copy_(overflow_device, non_blocking=True)
        event = torch.cuda.Event()
        event.record(current_stream())
        self._pending.append((event, host, capacity))

    def check(self, wait=False):
        if not wait and torch.cuda.is_current_stream_capturing():
            return  # no event queries inside a capture; the next eager call reads them
        still = []
        for event, host, capacity in self._pending:
            if wait:
                event.synchronize()
            elif not event.query():
                still.append((event, host, capacity))
                continue
            if int(host[0]) != 0:
                self._pending = []
                raise RuntimeError(
                    "nccl_ep_dispatch: this rank received more (token, expert) rows than "
                    "recv_capacity_per_rank=%d; the rows past it were dropped. Raise "
                    "moe_expert_rank_capacity_factor." % capacity)
        self._pending = still


class _Context:
    """What ensure_nccl_ep_bootstrapped set up: the group, its sizes and the MoE communicator."""

    def __init__(self, group, num_experts, max_tokens_per_rank, recv_capacity_per_rank, hidden_dim,
                 num_sms):
        self.group = group
        self.num_experts = num_experts
        self.max_tokens_per_rank = max_tokens_per_rank
        self.recv_capacity_per_rank = recv_capacity_per_rank
        self.hidden_dim = hidden_dim
        sms = int(num_sms) if num_sms else None
        self.buffer = CommBuffer(group, hidden_dim * 2, token_hint=max_tokens_per_rank,
                                 dispatch_sms=sms, combine_sms=sms)
        self.overflow = _OverflowWatch()


def _positive(name, value):
    value = int(value)
    if value <= 0:
        raise ValueError("%s=%d must be positive" % (name, value))
    return value


def ensure_nccl_ep_bootstrapped(ep_group, num_experts, max_tokens_per_rank, recv_capacity_per_rank,
                                hidden_dim, num_sms=0, zero_copy=False):
    """Sets up the process-wide context once (idempotent). Collective on ``ep_group`` when it
    replaces a context of another group. ``num_sms`` (0: the library's default) is the SM budget
    of dispatch and of combine. ``zero_copy`` is accepted: caller-owned receive buffers are
    written in place either way."""
    global _context
    group = resolve_group(ep_group)
    if _context is not None:
        if _context.group is group:
            return
        nccl_ep_finalize()
    experts = _positive("num_experts", num_experts)
    shapes.local_expert_count(experts, group.size())
    _context = _Context(group, experts, _positive("max_tokens_per_rank", max_tokens_per_rank),
                        _positive("recv_capacity_per_rank", recv_capacity_per_rank),
                        _positive("hidden_dim", hidden_dim), num_sms)


def nccl_ep_finalize():
    """Collective: destroys the context (idempotent; safe when never bootstrapped). Raises the
    overflow error of a dispatch whose report had not been read yet."""
    global _context
    context, _context = _context, None
    if context is None:
        return
    try:
        context.overflow.check(wait=True)
    finally:
        context.buffer.release()


def _require_context(what):
    if _context is None:
        raise RuntimeError("%s: call ensure_nccl_ep_bootstrapped(...) first" % what)
    return _context


def alloc_ep_symm_buffer(shape, dtype, ep_group):
    """A persistent zeroed device tensor for Megatron's zero-copy buffers. Any device tensor serves
    libnccl_moe (it does not need NCCL symmetric memory); ``ep_group`` is accepted for the
    signature."""
    del ep_group
    return torch.zeros(shape, dtype=dtype, device=torch.device("cuda", torch.cuda.current_device()))


class NcclEpBuffer:
    """One dispatch/combine pair: its sizes, and the layout handle dispatch leaves for combine."""

    def __init__(self, top_k, max_tokens_per_rank, recv_capacity_per_rank, hidden_dim,
                 num_local_experts, alignment=0):
        self.top_k = _positive("top_k", top_k)
        self.max_tokens_per_rank = _positive("max_tokens_per_rank", max_tokens_per_rank)
        self.recv_capacity_per_rank = int(recv_capacity_per_rank)
        self.hidden_dim = _positive("hidden_dim", hidden_dim)
        self.num_local_experts = _positive("num_local_experts", num_local_experts)
        self.alignment = int(alignment)
        if self.alignment < 0:
            raise ValueError("alignment=%d must not be negative" % self.alignment)
        shapes.check_row_budget(self.recv_capacity_per_rank, self.alignment)
        self.handle = None

    def __repr__(self):
        return ("nccl_moe.NcclEpBuffer(top_k=%d, max_tokens_per_rank=%d, recv_capacity_per_rank=%d,"
                " hidden_dim=%d, num_local_experts=%d, alignment=%d)"
                % (self.top_k, self.max_tokens_per_rank, self.recv_capacity_per_rank,
                   self.hidden_dim, self.num_local_experts, self.alignment))


def new_nccl_ep_buffer(top_k, max_tokens_per_rank, recv_capacity_per_rank, hidden_dim,
                       num_local_experts, alignment=0):
    """The state of one dispatch/combine pair (cheap: no device memory)."""
    context = _require_context("new_nccl_ep_buffer")
    buffer = NcclEpBuffer(top_k, max_tokens_per_rank, recv_capacity_per_rank, hidden_dim,
                          num_local_experts, alignment)
    local = context.num_experts // context.buffer.group_size
    if buffer.num_local_experts != local:
        raise ValueError("num_local_experts=%d but the context has %d experts over %d ranks"
                         % (buffer.num_local_experts, context.num_experts, context.buffer.group_size))
    if buffer.hidden_dim != context.hidden_dim:
        raise ValueError("hidden_dim=%d but the context was bootstrapped with %d"
                         % (buffer.hidden_dim, context.hidden_dim))
    return buffer


def _flat_rows(tensor, name):
    if tensor.dim() < 2:
        raise ValueError("%s must be [tokens, hidden], got shape %s" % (name, tuple(tensor.shape)))
    return tensor.reshape(-1, tensor.shape[-1])


class NcclEpDispatch(torch.autograd.Function):
    """Top-k routing to expert-major rows in a fixed receive capacity (no host synchronisation)."""

    @staticmethod
    def forward(ctx, tokens, topk_idx, topk_weights, buffer, recv_tokens, recv_topk_weights):
        context = _require_context("nccl_ep_dispatch")
        context.overflow.check()
        shape = tokens.shape
        x = _flat_rows(tokens, "tokens").contiguous()
        if topk_idx.dim() != 2 or topk_idx.shape[0] != x.shape[0]:
            raise ValueError("topk_idx must be [%d, top_k], got shape %s"
                             % (x.shape[0], tuple(topk_idx.shape)))
        if topk_idx.shape[1] != buffer.top_k:
            raise ValueError("topk_idx has %d columns but the buffer was made for top_k=%d"
                             % (topk_idx.shape[1], buffer.top_k))
        if x.shape[0] > buffer.max_tokens_per_rank:
            raise ValueError("%d tokens exceed max_tokens_per_rank=%d of the buffer"
                             % (x.shape[0], buffer.max_tokens_per_rank))
        if x.shape[1] != context.hidden_dim:
            raise ValueError("tokens have hidden size %d but the context was bootstrapped with %d"
                             % (x.shape[1], context.hidden_dim))
        req = shapes.Requirements(tokens=x.shape[0], topk=buffer.top_k, hidden=x.shape[1],
                                  experts=context.num_experts, row_type=row_type_of(x.dtype),
                                  same_topk=buffer.top_k)
        comm = context.buffer.prepare(req, blocking=False)
        handle, _ = ops.layout_topk(context.buffer, comm, topk_idx, topk_weights,
                                    expert_major=True, pad_multiple=buffer.alignment,
                                    row_budget=buffer.recv_capacity_per_rank)
        counts, overflow = ops.device_counts(handle)
        received, _, _, probs = ops.dispatch(handle, x, want_probs=True,
                                             rows=buffer.recv_capacity_per_rank,
                                             out_x=recv_tokens, out_probs=recv_topk_weights)
        handle.dispatch_rows = received.shape[0]
        context.overflow.watch(overflow, buffer.recv_capacity_per_rank)
        tokens_per_expert = counts.to(torch.int32)
        buffer.handle = handle
        ctx.handle = handle
        ctx.shape = shape
        ctx.x_dtype = tokens.dtype
        ctx.weights_dtype = None if topk_weights is None else topk_weights.dtype
        # Caller-owned receive buffers were written in place: autograd must know.
        written = [t for t in (recv_tokens, recv_topk_weights) if t is not None]
        if written:
            ctx.mark_dirty(*written)
        ctx.mark_non_differentiable(tokens_per_expert)
        return received, probs, tokens_per_expert

    @staticmethod
    def backward(ctx, grad_received, grad_probs, grad_tokens_per_expert):
        """Combine of the rows' gradient; the per-row probs' gradient back to [T, K]."""
        handle = ctx.handle
        if grad_received is None:
            grad_received = torch.zeros((handle.dispatch_rows, handle.comm.sizing.hidden),
                                        dtype=ctx.x_dtype, device=handle.buffer.device)
        want_probs = ctx.needs_input_grad[2] and grad_probs is not None
        grad_x, grad_weights = ops.combine(handle, grad_received,
                                           probs_grad=grad_probs if want_probs else None)
        if grad_weights is not None and ctx.weights_dtype is not None:
            grad_weights = grad_weights.to(ctx.weights_dtype)
        return grad_x.to(ctx.x_dtype).reshape(ctx.shape), None, grad_weights, None, None, None


class NcclEpCombine(torch.autograd.Function):
    """The unweighted sum of each token's expert rows back in local token order."""

    @staticmethod
    def forward(ctx, expert_out, buffer, num_local_tokens, grad_out):
        handle = buffer.handle
        if handle is None:
            raise RuntimeError("nccl_ep_combine: this buffer has not been dispatched with")
        rows = _flat_rows(expert_out, "expert_out")
        out_rows = buffer.max_tokens_per_rank if num_local_tokens is None else int(num_local_tokens)
        if out_rows < handle.num_tokens:
            raise ValueError("num_local_tokens=%d but the dispatch had %d tokens"
                             % (out_rows, handle.num_tokens))
        combined, _ = ops.combine(handle, rows)
        if out_rows > combined.shape[0]:
            combined = torch.cat([combined, combined.new_zeros(out_rows - combined.shape[0],
                                                               combined.shape[1])])
        ctx.handle = handle
        ctx.rows = rows.shape[0]
        ctx.shape = expert_out.shape
        ctx.x_dtype = expert_out.dtype
        ctx.grad_out = grad_out
        return combined.to(expert_out.dtype)

    @staticmethod
    def backward(ctx, grad_combined):
        """Dispatch of the gradient into the rows it came from (``grad_out`` when given)."""
        handle = ctx.handle
        grad = grad_combined[:handle.num_tokens]
        out = ctx.grad_out
        if out is not None and (out.dtype != ctx.x_dtype or out.shape[0] != ctx.rows):
            out = None  # not a buffer these rows fit: allocate (NCCL EP would stage it too)
        grad_rows = ops.cached_dispatch(handle, grad, rows=ctx.rows,
                                        out=None if out is None else _flat_rows(out, "grad_out"))
        return grad_rows.to(ctx.x_dtype).reshape(ctx.shape), None, None, None


def nccl_ep_dispatch(buffer, tokens, topk_idx, topk_weights, recv_tokens=None,
                     recv_topk_weights=None):
    """(recv_tokens, tokens_per_expert, dispatched_probs); see the module docstring."""
    received, probs, tokens_per_expert = NcclEpDispatch.apply(
        tokens, topk_idx, topk_weights, buffer, recv_tokens, recv_topk_weights)
    return received, tokens_per_expert, probs


def nccl_ep_combine(buffer, expert_out, num_local_tokens=None, grad_out=None):
    """[num_local_tokens, H] (``buffer.max_tokens_per_rank`` rows when None, zeros past the
    dispatched tokens); see the module docstring."""
    return NcclEpCombine.apply(expert_out, buffer, num_local_tokens, grad_out)
