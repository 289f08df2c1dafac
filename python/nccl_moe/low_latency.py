"""Low-latency (LL) dispatch and combine on torch tensors, for decoding (docs/low_latency.md).

One kernel per call, no layout call, no host synchronisation: the calls can be captured in a CUDA
graph and replayed with new routing (new contents at the same addresses; the number of tokens T
is part of the captured call). ::

    from nccl_moe.low_latency import LowLatencyBuffer
    buffer = LowLatencyBuffer(group, num_experts=256, hidden=7168, max_tokens=128)   # collective
    recv_x, recv_count, handle, hook = buffer.dispatch(x, topk_idx, return_recv_hook=True)
    ...                                   # other work; the rows travel without occupying SMs
    hook()                                # receive half: recv_x, recv_count valid from here on
    y = experts(recv_x, recv_count)       # [L, R*N, H] bf16, a masked grouped GEMM
    out, _ = buffer.combine(y, handle, topk_weights)                   # [T, H] bf16

What allocates: a call allocates its outputs (from PyTorch's caching allocator, on the current
stream) unless the caller passes them (``out=``: ``buffer.dispatch_outputs()`` once, then reuse),
and converts an input that is not already of its type and contiguous (x bf16, topk_idx int64,
topk_weights fp32). With every output given and every input in its type, a forward call allocates
no device memory: only host objects (the argument struct, the handle, the hook). The backward
passes allocate their outputs and scratch (see ``_combine_backward``).

Autograd: the dispatch's backward is the unweighted LL combine of the row gradients; the combine's
backward with respect to y is an LL dispatch of the output gradient, each row scaled by its slot's
weight, and with respect to the weights <grad_out[t], y(e_k, t)> per slot. FP8 dispatch is not
differentiable (its rows are E4M3 codes); the combine's backward needs a BF16 communicator.
Every rank must make the same LL calls in the same order, so ``requires_grad`` of x, y and the
weights, and whether a backward pass runs, must agree across the ranks.
"""
from .torch_support import torch  # raises TorchNotAvailableError first when PyTorch is missing

import collections  # noqa: E402

from . import low_latency_shapes as shapes  # noqa: E402
from .comm import MoeComm  # noqa: E402
from .low_latency_comm import HookOrderError, LowLatencyOps, ReceiveHook  # noqa: E402
from .torch_support import FP8_DTYPE, dist, nccl_comm_pointer, pointer, resolve_group  # noqa: E402

__all__ = ["LowLatencyBuffer", "LowLatencyHandle", "DispatchOutputs", "ReceiveHook", "HookOrderError"]

BF16 = torch.bfloat16

# The outputs of one dispatch. recv_scales is None with BF16 dispatch.
DispatchOutputs = collections.namedtuple("DispatchOutputs", "recv_x recv_scales recv_count recv_src_info")


class LowLatencyHandle:
    """What a dispatch leaves for its combine and for the backward passes: T, K, the ids (which must
    stay unmodified until the combine's send half has run) and the device layout (recv_count and
    recv_src_info, which the combine reads). Nothing in it visits the host."""

    def __init__(self, buffer, num_tokens, topk, topk_idx, recv_count, recv_src_info):
        self.buffer = buffer
        self.num_tokens = int(num_tokens)
        self.topk = int(topk)
        self.topk_idx = topk_idx
        self.recv_count = recv_count
        self.recv_src_info = recv_src_info
        self.hook = None  # the dispatch's ReceiveHook when it was split

    @property
    def received(self):
        """Whether the dispatch's outputs are (being) written: a plain call, or its hook was called."""
        return self.hook is None or self.hook.done

    def __repr__(self):
        return "nccl_moe.LowLatencyHandle(tokens=%d, topk=%d, %s)" % (
            self.num_tokens, self.topk, "received" if self.received else "awaiting its hook")


def _as_input(tensor, dtype, name, device):
    """``tensor`` in ``dtype``, contiguous, on the communicator's device (converting allocates)."""
    if not tensor.is_cuda or tensor.device != device:
        raise ValueError("%s must be a CUDA tensor on %s, got %s" % (name, device, tensor.device))
    if tensor.dtype != dtype:
        tensor = tensor.to(dtype)
    return tensor.contiguous()


def _pieces_of(values):
    """fp32 values -> [..., 3] bf16 (hi, mid, lo) with (hi + mid) + lo == value in fp32 for finite
    |value| >= 2^-109 (smaller values lose their bits below 2^-133); non-finite values travel in hi.
    hi keeps the top 16 bits of the fp32 pattern (a bf16 exactly), mid the top 16 of the rest, lo
    the remaining <= 8 significant bits (low_latency_shapes.bf16_pieces is the same on Python
    floats, and its CPU test checks the identity)."""
    finite = torch.isfinite(values)
    value = torch.where(finite, values, torch.zeros_like(values))
    keep_high = -65536  # 0xFFFF0000 as int32
    hi = (value.view(torch.int32) & keep_high).view(torch.float32)
    rest = value - hi
    mid = (rest.view(torch.int32) & keep_high).view(torch.float32)
    lo = rest - mid
    hi = torch.where(finite, hi, values)
    return torch.stack((hi, mid, lo), dim=-1).to(BF16)


class LowLatencyBuffer:
    """One LL communicator of a process group (``ncclMoeCommCreate`` with ``lowLatencyMaxTokens``).

    Collective to create and to :meth:`destroy` (every rank, the same arguments). ``max_tokens`` is
    N, the most tokens a rank passes to one call (1..1024); ``fp8=True`` makes every dispatch of the
    buffer FP8 E4M3 with one fp32 scale per 128 channels (``fp8_power_of_two_scales``: powers of
    two). ``num_sms``: SM budget of each call (None: the library's default). The buffer reserves
    ``buffer_bytes`` of LL buffers per rank, and high-throughput buffers for N tokens (the library
    requires them; the communicator serves HT calls too, through ``comm``).
    """

    def __init__(self, group, num_experts, hidden, max_tokens, *, max_topk=8, fp8=False,
                 fp8_power_of_two_scales=False, num_sms=None, timeout_ms=None):
        self.group = resolve_group(group)
        if fp8 and FP8_DTYPE is None:
            raise RuntimeError("FP8 dispatch needs torch.float8_e4m3fn (PyTorch 2.1 or newer)")
        sms = None if num_sms is None else int(num_sms)
        self.sizing = shapes.LowLatencySizing(
            ranks=self.group.size(), experts=int(num_experts), hidden=int(hidden), max_tokens=int(max_tokens),
            max_topk=int(max_topk), fp8=shapes.fp8_mode(fp8, fp8_power_of_two_scales), dispatch_sms=sms,
            combine_sms=sms, timeout_ms=None if timeout_ms is None else int(timeout_ms)).check()
        self.device = torch.device("cuda", torch.cuda.current_device())
        # One tiny all-reduce: every rank learns which field differs (the library would only say
        # that the configurations differ), and PyTorch's NCCL communicator of the group exists.
        agreement = torch.tensor(shapes.encode_for_max_reduce(self.sizing), dtype=torch.int64, device=self.device)
        dist.all_reduce(agreement, op=dist.ReduceOp.MAX, group=self.group)
        shapes.check_max_reduced(agreement.tolist())
        self.comm = MoeComm(nccl_comm_pointer(self.group), self.sizing)
        self.ops = LowLatencyOps(self.comm, lambda: torch.cuda.current_stream().cuda_stream)
        info = self.comm.info()
        self.buffer_bytes = int(info.lowLatencyBufferBytes)
        self.domains = int(info.domains)

    # ---- life cycle -------------------------------------------------------------------------

    def destroy(self):
        """Collective: frees the communicator. Idempotent; handles and hooks become unusable."""
        self.comm.destroy()

    def async_error(self):
        """Raises the failure the device recorded (a bad routing found by a dispatch: NcclMoeError
        with ncclInvalidArgument naming rank, token and slot; a peer timeout: RemoteError). After
        one, every call fails: destroy the buffer. Never blocks."""
        self.comm.async_error()

    def _check_live(self):
        self.comm.check_live("low-latency buffer")

    def __repr__(self):
        s = self.sizing
        return ("nccl_moe.LowLatencyBuffer(%d ranks, %d experts, hidden %d, max_tokens %d, max_topk %d, %s, "
                "%d LL bytes per rank)" % (s.ranks, s.experts, s.hidden, s.max_tokens, s.max_topk,
                                           ("bf16", "fp8", "fp8 pow2")[s.fp8], self.buffer_bytes))

    # ---- outputs ------------------------------------------------------------------------------

    def dispatch_outputs(self):
        """A set of dispatch outputs to pass as ``out=`` (allocate once, outside a captured graph):
        recv_x [L, P, H] bf16 (float8_e4m3fn with FP8), recv_scales (FP8: the [L, P, B] fp32 view
        with strides (B*P4, 1, P4), else None), recv_count [L] int32, recv_src_info [L, P, 3] int32."""
        s = self.sizing
        if s.fp8:
            recv_x = torch.empty(s.recv_x_shape, dtype=torch.uint8, device=self.device).view(FP8_DTYPE)
            storage = torch.empty((s.recv_scales_elements,), dtype=torch.float32, device=self.device)
            recv_scales = storage.as_strided(s.recv_scales_shape, s.recv_scales_strides)
        else:
            recv_x = torch.empty(s.recv_x_shape, dtype=BF16, device=self.device)
            recv_scales = None
        return DispatchOutputs(recv_x, recv_scales,
                               torch.empty(s.recv_count_shape, dtype=torch.int32, device=self.device),
                               torch.empty(s.src_info_shape, dtype=torch.int32, device=self.device))

    def _tensor(self, tensor, name, shape, dtype, strides=None):
        """A caller's output: checked, never reallocated; its device address."""
        shapes.check_output(name, tensor.shape, str(tensor.dtype).replace("torch.", ""), shape,
                            str(dtype).replace("torch.", ""), tuple(tensor.stride()), strides)
        if not tensor.is_cuda or tensor.device != self.device:
            raise ValueError("%s must be a CUDA tensor on %s, got %s" % (name, self.device, tensor.device))
        if strides is None and not tensor.is_contiguous():
            raise ValueError("%s must be contiguous" % name)
        return tensor.data_ptr() if tensor.numel() > 0 else 0

    def _output_pointers(self, outs):
        s = self.sizing
        if not isinstance(outs, DispatchOutputs):
            raise TypeError("out must be the DispatchOutputs of buffer.dispatch_outputs(), got %s" % type(outs).__name__)
        recv_x = self._tensor(outs.recv_x, "out.recv_x", s.recv_x_shape, FP8_DTYPE if s.fp8 else BF16)
        if s.fp8:
            if outs.recv_scales is None:
                raise ValueError("out.recv_scales is None but the buffer dispatches FP8")
            scales = self._tensor(outs.recv_scales, "out.recv_scales", s.recv_scales_shape, torch.float32,
                                  s.recv_scales_strides)
        else:
            if outs.recv_scales is not None:
                raise ValueError("out.recv_scales is given but the buffer dispatches BF16 (no scales)")
            scales = 0
        count = self._tensor(outs.recv_count, "out.recv_count", s.recv_count_shape, torch.int32)
        info = self._tensor(outs.recv_src_info, "out.recv_src_info", s.src_info_shape, torch.int32)
        return recv_x, scales, count, info

    # ---- dispatch -----------------------------------------------------------------------------

    def dispatch(self, x, topk_idx, *, out=None, return_recv_hook=False):
        """Sends every (token, kept slot) to the rank of its expert. x [T, H] bf16, topk_idx [T, K]
        int64 global expert ids (-1 masks a slot), T <= max_tokens (may differ by rank, 0 allowed),
        the same K on every rank.

        Returns ``(recv_x, recv_count, handle, hook)``: recv_x [L, P, H] bf16 (FP8: the tuple
        (codes float8_e4m3fn [L, P, H], scales fp32 [L, P, B])), segment l holding the rows of
        local expert l sorted by (source rank, source token); recv_count [L] int32 on the device;
        the handle for :meth:`combine`; ``hook`` None, or with ``return_recv_hook`` the
        :class:`ReceiveHook` whose call completes the dispatch (the outputs are not written until
        then). Rows past recv_count[l] are not written. The source rank, token and slot of each row
        are in ``handle.recv_src_info`` [L, P, 3]."""
        self._check_live()
        s = self.sizing
        tokens, topk = shapes.check_dispatch_shapes(s, x.shape, topk_idx.shape)
        differentiable = torch.is_grad_enabled() and x.requires_grad
        if differentiable and s.fp8:
            raise ValueError("an FP8 low-latency dispatch is not differentiable (its rows are E4M3 codes): "
                             "create the buffer with fp8=False for training, or detach x")
        rows = _as_input(x, BF16, "x", self.device)
        idx = _as_input(topk_idx, torch.int64, "topk_idx", self.device)
        outs = self.dispatch_outputs() if out is None else out
        pointers = self._output_pointers(outs)
        handle = LowLatencyHandle(self, tokens, topk, idx, outs.recv_count, outs.recv_src_info)
        if differentiable:
            recv_x = _Dispatch.apply(rows, outs.recv_x, self, handle, pointers, return_recv_hook)
        else:
            self._dispatch_call(rows, handle, pointers, return_recv_hook)
            recv_x = outs.recv_x
        received = (recv_x, outs.recv_scales) if s.fp8 else recv_x
        return received, outs.recv_count, handle, handle.hook

    def _dispatch_call(self, rows, handle, pointers, send_only):
        recv_x, scales, count, info = pointers
        handle.hook = self.ops.dispatch(
            num_tokens=handle.num_tokens, topk=handle.topk, x=pointer(rows, "x"),
            topk_idx=pointer(handle.topk_idx, "topk_idx"), recv_x=recv_x, recv_scales=scales, recv_count=count,
            recv_src_info=info, send_only=send_only)

    # ---- combine ------------------------------------------------------------------------------

    def combine(self, y, handle, topk_weights=None, *, out=None, return_recv_hook=False):
        """Brings every expert output back to its token's rank and sums each token's kept slots:
        out[t] = bf16 of the fp32 fmaf chain over k in slot order, from +0, of w[t, k] * y(e_k, t)
        (w = 1 with ``topk_weights`` None). y [L, P, H] bf16 in the layout of ``handle``'s
        dispatch (rows past its counts are not read); topk_weights [T, K] fp32.

        Returns ``(out, hook)``: out [T, H] bf16 (``out=``: the caller's tensor, written in place),
        hook None or, with ``return_recv_hook``, the ReceiveHook that completes the combine."""
        self._check_live()
        if not isinstance(handle, LowLatencyHandle) or handle.buffer is not self:
            raise ValueError("handle must come from a dispatch of this LowLatencyBuffer")
        s = self.sizing
        weights_shape = None if topk_weights is None else topk_weights.shape
        shapes.check_combine_shapes(s, y.shape, weights_shape, handle.num_tokens, handle.topk)
        need_y = torch.is_grad_enabled() and y.requires_grad
        need_w = torch.is_grad_enabled() and topk_weights is not None and topk_weights.requires_grad
        if need_y or need_w:
            shapes.check_backward_support(s, handle.topk, weighted=topk_weights is not None, weights_grad=need_w)
        rows = _as_input(y, BF16, "y", self.device)
        weights = None if topk_weights is None else _as_input(topk_weights, torch.float32, "topk_weights",
                                                              self.device)
        if out is None:
            out = torch.empty((handle.num_tokens, s.hidden), dtype=BF16, device=self.device)
        else:
            self._tensor(out, "out", (handle.num_tokens, s.hidden), BF16)
        if need_y or need_w:
            box = {}
            result = _Combine.apply(rows, weights, out, self, handle, return_recv_hook, box)
            return result, box["hook"]
        return out, self._combine_call(rows, weights, out, handle, return_recv_hook)

    def _combine_call(self, rows, weights, out, handle, send_only):
        return self.ops.combine(
            num_tokens=handle.num_tokens, topk=handle.topk, y=pointer(rows, "y"),
            recv_count=pointer(handle.recv_count, "recv_count"),
            recv_src_info=pointer(handle.recv_src_info, "recv_src_info"),
            topk_idx=pointer(handle.topk_idx, "topk_idx"), weights=pointer(weights, "topk_weights"),
            out=pointer(out, "out"), send_only=send_only, dispatch_hook=handle.hook)

    # ---- backward passes ----------------------------------------------------------------------

    def _dispatch_backward(self, handle, grad_rows):
        """grad_x = the unweighted LL combine of the row gradients (bit-exact as any LL combine)."""
        s = self.sizing
        if grad_rows is None:
            return torch.zeros((handle.num_tokens, s.hidden), dtype=BF16, device=self.device)
        grad = _as_input(grad_rows, BF16, "the gradient of recv_x", self.device)
        out = torch.empty((handle.num_tokens, s.hidden), dtype=BF16, device=self.device)
        self._combine_call(grad, None, out, handle, False)
        return out

    def _combine_backward(self, handle, y, weights, grad_out, need_y, need_w):
        """Gradients of a combine with respect to y and the weights (docs/low_latency.md section 7).

        1. Weighted: an LL dispatch of a token row carrying the token's K fp32 weights as 2K bf16
           bit patterns (a dispatch copies rows bit for bit and places them exactly as the forward
           dispatch did), so each received row learns the weight of its own slot (recv_src_info).
        2. An LL dispatch of grad_out: row (s, t, k) = grad_out_s[t] in the forward layout.
           grad_y = bf16(fp32(w[t, k] * row)) (the copy itself when unweighted); zero past the
           counts (y's rows there did not take part).
        3. Weights' gradient: each row's fp32 dot product <row, y row> is split into three bf16
           pieces placed at channels 3k..3k+2 of a zero row; an unweighted LL combine adds the
           token's rows channel by channel, and each channel has one non-zero term, so the pieces
           come back exactly and (hi + mid) + lo is the dot product.
        Allocates one set of dispatch outputs, grad_y and, for the weights' gradient, an [L, P, H]
        bf16 scratch row set and fp32 per-segment temporaries."""
        s = self.sizing
        T, K, L, P, H = handle.num_tokens, handle.topk, s.local_experts, s.segment_rows, s.hidden
        outs = self.dispatch_outputs()
        layout = LowLatencyHandle(self, T, K, handle.topk_idx, outs.recv_count, outs.recv_src_info)
        pointers = self._output_pointers(outs)
        slot = None
        slot_weight = None
        if weights is not None and need_y:
            packed = torch.zeros((T, H), dtype=BF16, device=self.device)
            packed[:, :shapes.PACKED_WEIGHT_CHANNELS_PER_SLOT * K] = weights.detach().float().contiguous().view(BF16)
            self._dispatch_call(packed, layout, pointers, False)
            slot = outs.recv_src_info[..., 2].long().clamp(0, K - 1)
            carried = outs.recv_x[..., :shapes.PACKED_WEIGHT_CHANNELS_PER_SLOT * K].contiguous().view(torch.float32)
            slot_weight = carried.gather(2, slot.unsqueeze(2)).squeeze(2)  # [L, P]
        grad = _as_input(grad_out, BF16, "the gradient of the combine's output", self.device)
        self._dispatch_call(grad, layout, pointers, False)
        rows = outs.recv_x
        valid = torch.arange(P, device=self.device).unsqueeze(0) < outs.recv_count.unsqueeze(1)  # [L, P]
        grad_y = None
        if need_y:
            if weights is None:
                grad_y = rows.masked_fill(~valid.unsqueeze(2), 0)
            else:
                grad_y = torch.empty_like(rows)
                for l in range(L):  # per segment: fp32 temporaries of [P, H], not [L, P, H]
                    grad_y[l] = (rows[l].float() * slot_weight[l].unsqueeze(1)).to(BF16)
                grad_y.masked_fill_(~valid.unsqueeze(2), 0)
        grad_w = None
        if need_w:
            if slot is None:
                slot = outs.recv_src_info[..., 2].long().clamp(0, K - 1)
            dots = torch.empty((L, P), dtype=torch.float32, device=self.device)
            y_rows = y.detach()
            for l in range(L):
                dots[l] = (rows[l].float() * y_rows[l].float()).sum(dim=1)
            dots = torch.where(valid, dots, torch.zeros_like(dots))
            pieces = _pieces_of(dots)  # [L, P, 3]
            channels = slot.unsqueeze(2) * shapes.WEIGHT_GRAD_CHANNELS_PER_SLOT + torch.arange(
                shapes.WEIGHT_GRAD_CHANNELS_PER_SLOT, device=self.device)
            scatter = torch.zeros((L, P, H), dtype=BF16, device=self.device)
            scatter.scatter_(2, channels, pieces)
            back = torch.empty((T, H), dtype=BF16, device=self.device)
            self._combine_call(scatter, None, back, layout, False)
            n = shapes.WEIGHT_GRAD_CHANNELS_PER_SLOT
            grad_w = (back[:, 0:n * K:n].float() + back[:, 1:n * K:n].float()) + back[:, 2:n * K:n].float()
            grad_w = torch.where(handle.topk_idx >= 0, grad_w, torch.zeros_like(grad_w)).to(weights.dtype)
        return grad_y, grad_w


class _Dispatch(torch.autograd.Function):
    """The differentiable dispatch: recv_x (the caller's tensor or a fresh one, written in place)."""

    @staticmethod
    def forward(ctx, rows, recv_x, buffer, handle, pointers, send_only):
        buffer._dispatch_call(rows, handle, pointers, send_only)
        ctx.buffer = buffer
        ctx.handle = handle
        ctx.x_dtype = rows.dtype
        ctx.mark_dirty(recv_x)
        return recv_x

    @staticmethod
    def backward(ctx, grad_recv_x):
        handle = ctx.handle
        if not handle.received:
            raise HookOrderError("backward through a low-latency dispatch whose receive hook was never called")
        grad_x = ctx.buffer._dispatch_backward(handle, grad_recv_x)
        return grad_x.to(ctx.x_dtype), None, None, None, None, None


class _Combine(torch.autograd.Function):
    """The differentiable combine: out (the caller's tensor or a fresh one, written in place)."""

    @staticmethod
    def forward(ctx, rows, weights, out, buffer, handle, send_only, box):
        box["hook"] = buffer._combine_call(rows, weights, out, handle, send_only)
        ctx.buffer = buffer
        ctx.handle = handle
        ctx.hook = box["hook"]
        ctx.save_for_backward(rows, weights)
        ctx.mark_dirty(out)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        if ctx.hook is not None and not ctx.hook.done:
            raise HookOrderError("backward through a low-latency combine whose receive hook was never called")
        rows, weights = ctx.saved_tensors
        need_y, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_y, grad_w = ctx.buffer._combine_backward(ctx.handle, rows, weights, grad_out, need_y, need_w)
        return grad_y, grad_w, None, None, None, None, None
