"""Layout, dispatch and combine on torch tensors: checks, output allocation, library calls.

Outputs come from PyTorch's caching allocator on the caller's current stream, and every library
call is enqueued on that stream, so results are stream-ordered like any PyTorch op. These
functions know nothing about autograd or Megatron; ``fused_a2a`` builds on them.
"""
import os

from . import comm as capi
from . import shapes, structs
from .handles import Handle
from .torch_support import (FP8_DTYPE, current_stream, dequantize_fp8, device_view,
                            dtype_of_row_type, pointer, torch)


ZERO_UNUSED_ENV = "NCCL_MOE_ZERO_UNUSED_ROWS"  # "1": budgeted outputs start zeroed


def _int_tensor(tensor, dtype):
    if tensor.dtype != dtype:
        tensor = tensor.to(dtype)
    return tensor.contiguous()


def layout_topk(buffer, comm, topk_idx, topk_probs, *, expert_major=False, pad_multiple=None,
                row_budget=None):
    """Layout of a top-k routing. Per-rank rows (FusedDispatch) by default; ``expert_major`` gives
    one row per (token, local expert), padded to ``pad_multiple``, with ``row_budget`` rows in
    non-blocking mode (the ncclep backend). Returns (Handle, kept tensors)."""
    stream = current_stream()
    num_tokens, topk = topk_idx.shape
    idx = _int_tensor(topk_idx, torch.int64)
    probs = None if topk_probs is None else topk_probs.to(torch.float32).contiguous()
    if probs is not None and tuple(probs.shape) != tuple(idx.shape):
        raise ValueError("token_probs has shape %s but token_indices has %s"
                         % (tuple(probs.shape), tuple(idx.shape)))
    routing = capi.topk_routing(num_tokens, topk, pointer(idx, "token_indices", device=buffer.device),
                                pointer(probs, "token_probs", device=buffer.device))
    return _layout(buffer, comm, routing, stream, num_tokens=num_tokens, topk=topk,
                   routing_format=structs.ROUTING_TOPK, expert_major=expert_major,
                   pad_multiple=pad_multiple, row_budget=row_budget,
                   has_probs=probs is not None), (idx, probs)


def _layout(buffer, comm, routing, stream, *, num_tokens, topk, routing_format, expert_major,
            pad_multiple, row_budget, has_probs):
    """ncclMoeLayoutCreate for either routing format; the Handle that describes its result."""
    pad = shapes.effective_pad(pad_multiple) if expert_major else None
    budget = -1
    if expert_major and row_budget is not None:
        budget = shapes.check_row_budget(row_budget, pad)
    options = capi.layout_options(expert_major=expert_major, pad_multiple=pad or 0,
                                  row_budget=budget)
    native = comm.layout(routing, options, stream.cuda_stream, reuse=buffer.pool.take(stream))
    handle = Handle(buffer, comm, native, num_tokens=num_tokens, topk=topk,
                    routing_format=routing_format, expert_major=expert_major, pad_multiple=pad,
                    row_budget=None if budget < 0 else budget, has_probs=has_probs, stream=stream)
    if budget >= 0:
        handle.rows = budget
    return handle


def layout_map(buffer, comm, routing_map, dense_probs, pad_multiple, row_budget):
    """Expert-major layout of a routing map (HybridEP). ``row_budget`` None: blocking mode."""
    stream = current_stream()
    num_tokens = routing_map.shape[0]
    rmap = routing_map.contiguous()
    if rmap.dtype == torch.bool:
        rmap = rmap.view(torch.uint8)
    elif rmap.dtype != torch.uint8:
        rmap = rmap.to(torch.uint8)
    probs = None if dense_probs is None else dense_probs.to(torch.float32).contiguous()
    if probs is not None and tuple(probs.shape) != tuple(rmap.shape):
        raise ValueError("probs has shape %s but routing_map has %s"
                         % (tuple(probs.shape), tuple(rmap.shape)))
    routing = capi.map_routing(num_tokens, pointer(rmap, "routing_map", device=buffer.device),
                               pointer(probs, "probs", device=buffer.device))
    return _layout(buffer, comm, routing, stream, num_tokens=num_tokens, topk=0,
                   routing_format=structs.ROUTING_MAP, expert_major=True,
                   pad_multiple=pad_multiple, row_budget=row_budget,
                   has_probs=probs is not None), (rmap, probs)


def read_counts(handle):
    """Host counts (waits for the layout to produce them; it may still be placing rows on its
    stream, which orders the dispatch after it): sets handle.rows / tokens_per_expert."""
    handle.check_live()
    local = handle.comm.sizing.experts // handle.buffer.group_size
    rows, per_expert, overflow = handle.comm.get_counts(handle.native, local)
    if handle.row_budget is None:
        handle.rows = rows
    handle.tokens_per_expert = per_expert
    handle.overflow = overflow
    return rows, per_expert, overflow


def device_counts(handle):
    """Zero-copy device views (tokens per expert int64 [L], overflow int32 [1]); they keep the
    handle alive."""
    handle.check_live()
    local = handle.comm.sizing.experts // handle.buffer.group_size
    _, per_expert, overflow = handle.comm.device_counts(handle.native)
    return (device_view(per_expert, (local,), torch.int64, handle),
            device_view(overflow, (1,), torch.int32, handle))


def _rows_like(comm, x, name):
    """x as the communicator's row type (a gradient may arrive in another float type)."""
    dtype = dtype_of_row_type(comm.sizing.row_type)
    if x.dtype != dtype:
        x = x.to(dtype)
    x = x.contiguous()
    if x.dim() != 2 or x.shape[1] != comm.sizing.hidden:
        raise ValueError("%s must be [rows, %d], got %s" % (name, comm.sizing.hidden, tuple(x.shape)))
    return x


def _caller_output(tensor, name, shape, dtype, device):
    """A caller-provided output (zero-copy receive buffers): checked, never reallocated."""
    if tuple(tensor.shape) != tuple(shape) or tensor.dtype != dtype:
        raise ValueError("%s must be %s of shape %s, got %s of shape %s"
                         % (name, dtype, tuple(shape), tensor.dtype, tuple(tensor.shape)))
    pointer(tensor, name, device=device)
    return tensor


def dispatch(handle, x, *, want_topk_idx=False, want_probs=False, rows=None, out_x=None,
             out_probs=None):
    """Tokens to the experts' ranks. Returns (recv_x, recv_scales, recv_topk_idx, recv_probs);
    recv_x is float8_e4m3fn with FP8 dispatch (recv_scales fp32 [rows, ceil(H/128)]), else the
    row type. ``rows``: rows to allocate (at least handle.rows). ``out_x`` / ``out_probs``: the
    caller's receive tensors (rows taken from ``out_x``), written in place."""
    handle.check_live()
    comm, stream = handle.comm, current_stream()
    handle.used_on(stream)
    sizing = comm.sizing
    x = _rows_like(comm, x, "x")
    if x.shape[0] != handle.num_tokens:
        raise ValueError("x has %d rows but the routing had %d tokens" % (x.shape[0], handle.num_tokens))
    if handle.rows is None:
        read_counts(handle)
    if out_x is not None:
        rows = out_x.shape[0]
        if rows < handle.rows:
            raise ValueError("the receive buffer has %d rows but the dispatch delivers %d"
                             % (rows, handle.rows))
    rows = handle.rows if rows is None else max(int(rows), handle.rows)
    device = handle.buffer.device
    # Rows past the used part of a budgeted output are not written by the library.
    zero_unused = handle.row_budget is not None and os.environ.get(ZERO_UNUSED_ENV, "0") == "1"
    alloc = torch.zeros if zero_unused else torch.empty
    if out_x is not None:
        if sizing.fp8:
            raise ValueError("caller-provided receive rows are not supported with FP8 dispatch")
        recv_x = _caller_output(out_x, "recv_tokens", (rows, sizing.hidden), x.dtype, device)
        recv_scales = None
    elif sizing.fp8:
        recv_x = alloc((rows, sizing.hidden), dtype=torch.uint8, device=device)
        recv_scales = alloc((rows, shapes.fp8_scale_blocks(sizing.hidden)),
                                  dtype=torch.float32, device=device)
    else:
        recv_x = alloc((rows, sizing.hidden), dtype=x.dtype, device=device)
        recv_scales = None
    recv_idx = None
    if want_topk_idx:
        recv_idx = torch.empty((rows, handle.topk), dtype=torch.int64, device=device)
    recv_probs = None
    if want_probs and handle.has_probs:
        width = () if handle.expert_major else (handle.topk,)
        if out_probs is not None:
            recv_probs = _caller_output(out_probs, "recv_topk_weights", (rows,) + width,
                                        torch.float32, device)
        else:
            recv_probs = alloc((rows,) + width, dtype=torch.float32, device=device)
    args = structs.MoeDispatchArgs(
        x=pointer(x, "x", device=device) or None, recvRows=rows,
        recvX=pointer(recv_x, "recv_x") or None, recvScales=pointer(recv_scales, "recv_scales") or None,
        recvTopkIdx=pointer(recv_idx, "recv_topk_idx") or None,
        recvProbs=pointer(recv_probs, "recv_probs") or None)
    comm.dispatch(handle.native, args, stream.cuda_stream)
    if sizing.fp8:
        recv_x = recv_x.view(FP8_DTYPE)
    return recv_x, recv_scales, recv_idx, recv_probs


def cached_dispatch(handle, grad, rows, out=None):
    """Combine's backward: the gradient rows go where the forward rows came from (same handle,
    no routing). With FP8 dispatch they travel quantised and are dequantised here. ``out``: the
    caller's tensor of ``rows`` rows to write them into."""
    recv_x, recv_scales, _, _ = dispatch(handle, grad, rows=rows, out_x=out)
    if recv_scales is not None:
        recv_x = dequantize_fp8(recv_x, recv_scales, handle.comm.sizing.hidden,
                                dtype_of_row_type(handle.comm.sizing.row_type))
    return recv_x


def combine(handle, x, probs_grad=None):
    """Unweighted sum of each token's rows back on its rank: out [T,H] in the row type; with
    ``probs_grad`` (same shape as dispatch's recv_probs) also its reduction to the routing's
    format ([T,K] top-k or [T,E] map, fp32)."""
    handle.check_live()
    comm, stream = handle.comm, current_stream()
    handle.used_on(stream)
    x = _rows_like(comm, x, "x")
    if handle.rows is None:
        read_counts(handle)
    if x.shape[0] < handle.rows:
        raise ValueError("combine got %d rows but the dispatch delivered %d" % (x.shape[0], handle.rows))
    device = handle.buffer.device
    out = torch.empty((handle.num_tokens, comm.sizing.hidden), dtype=x.dtype, device=device)
    out_probs_grad = None
    if probs_grad is not None:
        if not handle.has_probs:
            raise ValueError("a probs gradient was given but the dispatch carried no probs")
        probs_grad = probs_grad.to(torch.float32).contiguous()
        if probs_grad.shape[0] != x.shape[0]:
            raise ValueError("the probs gradient has %d rows but x has %d"
                             % (probs_grad.shape[0], x.shape[0]))
        width = comm.sizing.experts if handle.routing_format == structs.ROUTING_MAP else handle.topk
        out_probs_grad = torch.empty((handle.num_tokens, width), dtype=torch.float32, device=device)
    args = structs.MoeCombineArgs(
        x=pointer(x, "x", device=device) or None, rows=x.shape[0], out=pointer(out, "out") or None,
        probsGrad=pointer(probs_grad, "probs_grad") or None,
        outProbsGrad=pointer(out_probs_grad, "out_probs_grad") or None)
    comm.combine(handle.native, args, stream.cuda_stream)
    return out, out_probs_grad
