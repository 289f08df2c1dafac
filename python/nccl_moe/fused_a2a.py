"""Drop-in backend for Megatron-Core's ``megatron.core.transformer.moe.fused_a2a``.

Serves Megatron-Core 0.15.x to 0.19.x unchanged (0.15.x has only the DeepEP backend): the union of
the names each release imports and of the signatures each release calls (see
``/shared/REFERENCE.md`` §A-B of the project and python/README.md), carried by libnccl_moe over
NCCL instead of DeepEP, HybridEP or NCCL EP:

* ``FusedDispatch`` / ``FusedCombine`` (``deepep``: top-k indices, one row per token and
  destination rank, CPU int64 ``tokens_per_expert``);
* ``HybridEPDispatch`` / ``HybridEPCombine`` (``hybridep``: routing map, expert-major rows padded
  to ``pad_multiple``; blocking mode with CPU counts, or non-blocking mode with a row budget,
  device counts and the overflow flag at ``handle[-1]``; FP8 dispatch with ``scaling_factor``);
* the ``ncclep`` backend of 0.19 (``nccl_ep_dispatch`` and friends, see ``nccl_moe.nccl_ep``),
  without TransformerEngine and on any NCCL;
* the wrappers and constants Megatron imports: ``fused_dispatch``, ``fused_combine``,
  ``hybrid_ep_dispatch``, ``hybrid_ep_combine``, ``set_deepep_num_sms``, ``init_hybrid_ep_buffer``,
  ``reset_hybrid_ep_buffer``, ``get_buffer``, ``get_hidden_bytes``, ``HYBRIDEP_TOKEN_ALIGNMENT``.

Streams: ``async_finish`` and ``allocate_on_comm_stream`` are accepted; every call is enqueued on
the caller's current CUDA stream and its outputs are allocated there, so results are
stream-ordered exactly as Megatron expects after ``current_stream_wait()``.
"""
from .torch_support import torch  # raises TorchNotAvailableError first when PyTorch is missing

from . import ops, shapes  # noqa: E402
from .buffer import CommBuffer  # noqa: E402
from .handles import Handle, HybridEPHandle  # noqa: E402
from .nccl_ep import (alloc_ep_symm_buffer, ensure_nccl_ep_bootstrapped,  # noqa: E402
                      nccl_ep_combine, nccl_ep_dispatch, nccl_ep_finalize, new_nccl_ep_buffer)
from .torch_support import resolve_group, row_type_of  # noqa: E402

__all__ = [
    "get_hidden_bytes", "get_buffer", "FusedDispatch", "FusedCombine", "fused_dispatch",
    "fused_combine", "set_deepep_num_sms", "init_hybrid_ep_buffer", "reset_hybrid_ep_buffer",
    "HybridEPDispatch", "HybridEPCombine", "hybrid_ep_dispatch", "hybrid_ep_combine",
    "HYBRIDEP_TOKEN_ALIGNMENT", "ensure_nccl_ep_bootstrapped", "nccl_ep_finalize",
    "alloc_ep_symm_buffer", "new_nccl_ep_buffer", "nccl_ep_dispatch", "nccl_ep_combine",
    "HAVE_DEEP_EP", "HAVE_HYBRIDEP", "HAVE_TE_EP",
]

# Megatron tests these flags (and the wrappers for None) to decide whether the backend exists.
HAVE_DEEP_EP = True
HAVE_HYBRIDEP = True
HAVE_TE_EP = True  # 0.19's name for "the ncclep functions exist" (served here without TE)

# Megatron pads uneven token counts to a multiple of this when asked to
# (moe_hybridep_pad_uneven_dispatch_inputs), because HybridEP's kernels work in 64-token chunks.
# Ours take any T on any rank, so no alignment is needed: 1 keeps that optional padding minimal.
HYBRIDEP_TOKEN_ALIGNMENT = 1

_buffer = None
_hybrid_ep_buffer = None
_deepep_num_sms = None


# ---- buffers ------------------------------------------------------------------------------------

def get_hidden_bytes(x):
    """Bytes of one token row as the buffer sees it: FP8 counts as 2 bytes (the same buffer also
    carries the bf16 combine)."""
    return x.size(1) * max(x.element_size(), 2)


def get_buffer(group, hidden_bytes):
    """The process-wide FusedDispatch buffer of ``group``.

    Replaced when absent or when the group changes; "too small" is decided at the next dispatch,
    where the token count, top-k and experts are known (the communicator then grows collectively
    and older handles become stale).
    """
    global _buffer
    group = resolve_group(group)
    if _buffer is not None and _buffer.group is not group:
        _buffer.release()
        _buffer = None
    if _buffer is None:
        _buffer = CommBuffer(group, hidden_bytes, dispatch_sms=_deepep_num_sms,
                             combine_sms=_deepep_num_sms)
    elif hidden_bytes > _buffer.hidden_bytes:
        _buffer.hidden_bytes = int(hidden_bytes)
    return _buffer


def reset_buffer():
    """Collective: destroys the FusedDispatch buffer (not in Megatron; for tests and teardown)."""
    global _buffer
    if _buffer is not None:
        _buffer.release()
    _buffer = None


def set_deepep_num_sms(num_sms):
    """SMs for FusedDispatch/FusedCombine kernels. The SM budget is part of the communicator's
    configuration, so it applies when the buffer is next created or grown."""
    global _deepep_num_sms
    _deepep_num_sms = None if num_sms is None else int(num_sms)
    if _buffer is not None:
        _buffer.settings.update(dispatch_sms=_deepep_num_sms, combine_sms=_deepep_num_sms)


def _sm_budget(*candidates):
    """One SM budget for one fused kernel: the largest of the budgets Megatron gives the phases
    that kernel runs (None where none is given: the library's default). HybridEP runs the
    communication and the permute as separate kernels, one after the other, each within its own
    budget; ours runs both in one kernel, so the larger budget is never more than Megatron allowed
    at any moment."""
    given = [int(c) for c in candidates if c is not None and int(c) > 0]
    return max(given) if given else None


def init_hybrid_ep_buffer(group, hidden_dim, num_tokens=None, num_local_experts=None,
                          num_sms_dispatch_api=None, num_sms_combine_api=None,
                          num_blocks_permute=None, num_blocks_unpermute=None, fp8_dispatch=False,
                          num_sms_preprocessing_api=None, *, seq_len=None,
                          fp8_power_of_two_scales=False, max_topk=None):
    """Sets up the HybridEP buffer of ``group`` (collective when it replaces a live one).

    Serves both signatures Megatron-Core has had:

    * 0.16/0.17: ``(group, hidden_dim, seq_len, num_local_experts, num_sms_dispatch_api,
      num_sms_combine_api, fp8_dispatch)``;
    * 0.18+: ``(group, hidden_dim, num_tokens, num_local_experts, num_sms_dispatch_api=None,
      num_sms_combine_api=None, num_blocks_permute=None, num_blocks_unpermute=None,
      fp8_dispatch=False, num_sms_preprocessing_api=None)``.

    Positional arguments follow the 0.18+ order. A 0.16-style positional call puts the bool
    ``fp8_dispatch`` seventh, where 0.18 has ``num_blocks_permute`` (an int or None, never a
    bool): a bool there is read as ``fp8_dispatch``. ``seq_len=`` (0.16/0.17) and ``num_tokens=``
    (0.18+) both name the largest T per rank the buffer is sized for.

    SM budgets: the dispatch kernel (communication with the permute fused in) runs within
    ``max(num_sms_dispatch_api, num_blocks_permute)`` SMs, combine within
    ``max(num_sms_combine_api, num_blocks_unpermute)`` (see ``_sm_budget``). The layout (HybridEP's
    "preprocessing") runs within the dispatch budget: ``num_sms_preprocessing_api`` is accepted and
    cannot raise it, because the C API has no separate layout budget.

    The communicator itself is created by the first dispatch, when the routed experts per token
    are known too (pass ``max_topk`` to size for more). A later blocking call that needs more
    grows it. Beyond Megatron's backends, ``fp8_dispatch=True`` works: rows travel as E4M3 with
    fp32 scales per 128 channels (``fp8_power_of_two_scales`` rounds them up to powers of two).
    """
    global _hybrid_ep_buffer
    if isinstance(num_blocks_permute, bool):  # 0.16/0.17 positional fp8_dispatch
        if num_blocks_unpermute is not None or fp8_dispatch or num_sms_preprocessing_api is not None:
            raise TypeError("init_hybrid_ep_buffer: a bool in 7th place is the 0.16/0.17 "
                            "fp8_dispatch and cannot be followed by 0.18 arguments")
        fp8_dispatch, num_blocks_permute = num_blocks_permute, None
    if seq_len is not None:
        if num_tokens is not None and int(num_tokens) != int(seq_len):
            raise TypeError("init_hybrid_ep_buffer: num_tokens=%s and seq_len=%s name the same "
                            "size; give one" % (num_tokens, seq_len))
        num_tokens = seq_len
    if num_tokens is None:
        raise TypeError("init_hybrid_ep_buffer: num_tokens (0.18+) or seq_len (0.16/0.17) is "
                        "required")
    group = resolve_group(group)
    if _hybrid_ep_buffer is not None:
        _hybrid_ep_buffer.release()
        _hybrid_ep_buffer = None
    if num_local_experts is not None and int(num_local_experts) <= 0:
        raise ValueError("num_local_experts=%s must be positive" % num_local_experts)
    _hybrid_ep_buffer = CommBuffer(
        group, int(hidden_dim) * 2, token_hint=num_tokens, topk_hint=max_topk, fp8=fp8_dispatch,
        fp8_power_of_two=fp8_power_of_two_scales,
        dispatch_sms=_sm_budget(num_sms_dispatch_api, num_blocks_permute),
        combine_sms=_sm_budget(num_sms_combine_api, num_blocks_unpermute))


def reset_hybrid_ep_buffer():
    """Collective: destroys the HybridEP buffer; handles made with it become stale."""
    global _hybrid_ep_buffer
    if _hybrid_ep_buffer is not None:
        _hybrid_ep_buffer.release()
    _hybrid_ep_buffer = None


def _layout_of(handle):
    if isinstance(handle, HybridEPHandle):
        return handle.layout
    if isinstance(handle, Handle):
        return handle
    raise TypeError("expected a handle returned by nccl_moe's dispatch, got %s" % type(handle).__name__)


def _check_tokens(x, routing, what):
    if x.dim() != 2:
        raise ValueError("x must be [tokens, hidden], got shape %s" % (tuple(x.shape),))
    if routing.dim() != 2 or routing.shape[0] != x.shape[0]:
        raise ValueError("%s must be [%d, ...] like x, got shape %s"
                         % (what, x.shape[0], tuple(routing.shape)))


def _as(tensor, dtype):
    return None if tensor is None else (tensor if tensor.dtype == dtype else tensor.to(dtype))


# ---- FusedDispatch / FusedCombine (top-k format, per-rank rows) ------------------------------

class FusedDispatch(torch.autograd.Function):
    """Fused dispatch operation for MoE routing combining computation and communication."""

    @staticmethod
    def forward(ctx, x, token_indices, token_probs, num_experts, group, async_finish=False,
                allocate_on_comm_stream=False):
        """Forward pass of fused dispatch: (recv_x, recv_token_indices (local ids, -1 elsewhere),
        recv_token_probs, tokens_per_expert (CPU int64), handle)."""
        group = resolve_group(group)
        buffer = get_buffer(group, get_hidden_bytes(x))
        x = x.contiguous()
        _check_tokens(x, token_indices, "token_indices")
        num_tokens, topk = token_indices.shape
        req = shapes.Requirements(tokens=num_tokens, topk=topk, hidden=x.shape[1],
                                  experts=int(num_experts), row_type=row_type_of(x.dtype),
                                  same_topk=topk)
        shapes.local_expert_count(int(num_experts), buffer.group_size)
        comm = buffer.prepare(req, blocking=True)
        handle, _ = ops.layout_topk(buffer, comm, token_indices, token_probs)
        _, per_expert, _ = ops.read_counts(handle)
        recv_x, _, recv_idx, recv_probs = ops.dispatch(handle, x, want_topk_idx=True, want_probs=True)
        handle.dispatch_rows = recv_x.shape[0]
        tokens_per_expert = torch.tensor(per_expert, dtype=torch.int64)
        ctx.handle = handle
        ctx.group = group
        ctx.x_dtype = x.dtype
        ctx.probs_dtype = None if token_probs is None else token_probs.dtype
        ctx.mark_non_differentiable(recv_idx, tokens_per_expert)
        return recv_x, recv_idx, recv_probs, tokens_per_expert, handle

    @staticmethod
    def backward(ctx, grad_output, grad_token_indices, grad_token_probs, grad_tokens_per_expert,
                 grad_handle):
        """Combine of the rows' gradient (and of the probs' gradient back to [T, K])."""
        handle = ctx.handle
        want_probs = ctx.needs_input_grad[2] and handle.has_probs and grad_token_probs is not None
        grad_x, grad_probs = ops.combine(handle, grad_output,
                                         probs_grad=grad_token_probs if want_probs else None)
        return (_as(grad_x, ctx.x_dtype), None, _as(grad_probs, ctx.probs_dtype),
                None, None, None, None)


class FusedCombine(torch.autograd.Function):
    """Fused combine operation for MoE output combining computation and communication."""

    @staticmethod
    def forward(ctx, x, group, handle, async_finish=False, allocate_on_comm_stream=False):
        """Unweighted sum of each token's rows back on its rank: (combined [T, H], None)."""
        layout = _layout_of(handle)
        combined, _ = ops.combine(layout, x)
        ctx.handle = layout
        ctx.rows = x.shape[0]
        ctx.x_dtype = x.dtype
        return _as(combined, x.dtype), None

    @staticmethod
    def backward(ctx, grad_output, previous_event=None):
        """Cached-handle dispatch of the gradient to the rows it came from."""
        grad_x = ops.cached_dispatch(ctx.handle, grad_output, rows=ctx.rows)
        return _as(grad_x, ctx.x_dtype), None, None, None, None


def fused_dispatch(x, token_indices, token_probs, num_experts, group, async_finish=False,
                   allocate_on_comm_stream=False):
    """FusedDispatch.apply with Megatron's argument order."""
    return FusedDispatch.apply(x.contiguous(), token_indices, token_probs, num_experts, group,
                               async_finish, allocate_on_comm_stream)


def fused_combine(x, group, handle, async_finish=False, allocate_on_comm_stream=False):
    """FusedCombine.apply with Megatron's argument order."""
    return FusedCombine.apply(x, group, handle, async_finish, allocate_on_comm_stream)


# ---- HybridEPDispatch / HybridEPCombine (routing map, expert-major rows) -----------------------

class HybridEPDispatch(torch.autograd.Function):
    """Fused dispatch operation for permute + dispatch a2a + permute using the HybridEP backend."""

    @staticmethod
    def forward(ctx, x, routing_map, probs, group, num_local_experts, num_sms_dispatch_api=None,
                num_sms_combine_api=None, num_blocks_permute=None, num_blocks_unpermute=None,
                fused=False, num_permuted_tokens=None, pad_multiple=None,
                num_sms_preprocessing_api=108):
        """Returns (hidden [P, H], probs [P], scaling_factor, tokens_per_expert [L], handle).

        The 0.18+ argument order (see ``hybrid_ep_dispatch``). ``fused``: our dispatch kernel
        always writes the permuted (expert-major) rows itself, so fused and unfused give the same
        outputs; the flag is accepted for both values."""
        group = resolve_group(group)
        x = x.contiguous()
        _check_tokens(x, routing_map, "routing_map")
        if _hybrid_ep_buffer is None or _hybrid_ep_buffer.group is not group:
            init_hybrid_ep_buffer(group, x.shape[1], x.shape[0], num_local_experts,
                                  num_sms_dispatch_api, num_sms_combine_api, num_blocks_permute,
                                  num_blocks_unpermute, False, num_sms_preprocessing_api)
        buffer = _hybrid_ep_buffer
        num_experts = routing_map.shape[1]
        local = shapes.local_expert_count(num_experts, buffer.group_size)
        if num_local_experts is not None and int(num_local_experts) != local:
            raise ValueError("num_local_experts=%d but routing_map has %d experts over %d ranks"
                             % (num_local_experts, num_experts, buffer.group_size))
        blocking = num_permuted_tokens is None
        budget = None if blocking else shapes.check_row_budget(num_permuted_tokens, pad_multiple)
        device_topk = None
        if (blocking or buffer.comm is None) and x.shape[0] > 0:
            device_topk = routing_map.sum(dim=1).max()
        topk = 0
        if not blocking and buffer.comm is None and not buffer.topk_hint:
            # No later non-blocking call can grow the buffer, and a routing-map row may select up
            # to every expert (Megatron's drop-and-pad fills each expert's capacity with tokens
            # routed elsewhere), so size for all of them unless init_hybrid_ep_buffer(max_topk=)
            # bounds it.
            topk = num_experts
        req = shapes.Requirements(tokens=x.shape[0], topk=topk, hidden=x.shape[1],
                                  experts=num_experts, row_type=row_type_of(x.dtype), fp8=buffer.fp8)
        comm = buffer.prepare(req, blocking=blocking, device_topk=device_topk)
        handle, _ = ops.layout_map(buffer, comm, routing_map, probs, pad_multiple, budget)
        tokens_device, overflow_device = ops.device_counts(handle)
        if blocking:
            _, per_expert, _ = ops.read_counts(handle)
            tokens_per_expert = torch.tensor(per_expert, dtype=torch.int64)
        else:
            tokens_per_expert = tokens_device
        hidden, scaling_factor, _, dispatched_probs = ops.dispatch(handle, x, want_probs=True)
        handle.dispatch_rows = hidden.shape[0]
        ctx.handle = handle
        ctx.x_dtype = x.dtype
        ctx.probs_dtype = None if probs is None else probs.dtype
        ctx.mark_non_differentiable(*[t for t in (scaling_factor, tokens_per_expert) if t is not None])
        return (hidden, dispatched_probs, scaling_factor, tokens_per_expert,
                HybridEPHandle(handle, tokens_device, overflow_device))

    @staticmethod
    def backward(ctx, grad_x, grad_probs, grad_scaling_factor, grad_tokens_per_expert, grad_handle):
        """Combine-with-unpermute of the rows' gradient; probs gradient back to dense [T, E]."""
        handle = ctx.handle
        want_probs = ctx.needs_input_grad[2] and handle.has_probs and grad_probs is not None
        combined, combined_probs = ops.combine(handle, grad_x,
                                               probs_grad=grad_probs if want_probs else None)
        return ((_as(combined, ctx.x_dtype), None, _as(combined_probs, ctx.probs_dtype))
                + (None,) * 10)


class HybridEPCombine(torch.autograd.Function):
    """Fused combine operation for permute + combine a2a + permute using the HybridEP backend."""

    @staticmethod
    def forward(ctx, x, handle, num_permuted_tokens=None, pad_multiple=None, fused=False):
        """Plain sum of each token's rows (padding and unused rows ignored): [T, H]. The layout
        (rows, padding) comes from the handle; ``num_permuted_tokens``, ``pad_multiple`` and
        ``fused`` are accepted as Megatron passes them."""
        layout = _layout_of(handle)
        combined, _ = ops.combine(layout, x)
        ctx.handle = layout
        ctx.rows = x.shape[0]
        ctx.x_dtype = x.dtype
        return _as(combined, x.dtype)

    @staticmethod
    def backward(ctx, grad_x):
        """Cached-handle dispatch of the gradient into the expert-major rows."""
        grad = ops.cached_dispatch(ctx.handle, grad_x, rows=ctx.rows)
        return _as(grad, ctx.x_dtype), None, None, None, None


def hybrid_ep_dispatch(x, routing_map, probs, group, num_local_experts, num_sms_dispatch_api=None,
                       num_sms_combine_api=None, num_blocks_permute=None, num_blocks_unpermute=None,
                       fused=False, num_permuted_tokens=None, pad_multiple=None,
                       num_sms_preprocessing_api=108):
    """HybridEPDispatch.apply, with the union of the signatures Megatron-Core has called.

    0.16/0.17 call it with keywords ``num_sms_dispatch_api``, ``num_sms_combine_api``,
    ``num_permuted_tokens``, ``pad_multiple``; 0.18+ add ``num_blocks_permute``,
    ``num_blocks_unpermute``, ``fused`` and ``num_sms_preprocessing_api``, inserted before
    ``num_permuted_tokens``. Every Megatron call site passes everything after ``num_local_experts``
    by keyword, so positional arguments follow the newest (0.18+) order; a caller written for
    0.16's positional order must pass ``num_permuted_tokens``/``pad_multiple`` by keyword.
    """
    return HybridEPDispatch.apply(x, routing_map, probs, group, num_local_experts,
                                  num_sms_dispatch_api, num_sms_combine_api, num_blocks_permute,
                                  num_blocks_unpermute, fused, num_permuted_tokens, pad_multiple,
                                  num_sms_preprocessing_api)


def hybrid_ep_combine(x, handle, num_permuted_tokens=None, pad_multiple=None, fused=False):
    """HybridEPCombine.apply with Megatron's argument order (0.16+, ``fused`` from 0.18)."""
    return HybridEPCombine.apply(x, handle, num_permuted_tokens, pad_multiple, fused)
