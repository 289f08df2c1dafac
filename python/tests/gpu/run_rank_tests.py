#!/usr/bin/env python3
"""GPU tests of nccl_moe.fused_a2a, one process per rank, against the pure-PyTorch reference.

Run through the launcher (one GPU shared by N ranks, each its own NCCL "host"):

    build/tools/nccl-moe-run -np 4 --mps -- python3 python/tests/gpu/run_rank_tests.py

or under torchrun on a multi-GPU node. Every rank runs every check, prints one PASS/FAIL line per
check, and exits non-zero if any check failed on any rank. ``--only SUBSTRING`` runs a subset,
``--list`` names the checks.

A check first makes all of its collective calls (ours, then the reference's) and compares
afterwards, so that a failed comparison on one rank cannot leave the others waiting in a
collective.
"""
import argparse
import datetime
import os
import sys
import time
import traceback
import types
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.abspath(os.path.join(HERE, "..", "..")))
sys.path.insert(0, HERE)
os.environ.setdefault("NCCL_MOE_TIMEOUT_MS", "60000")  # a hang becomes an error naming the peer
os.environ.setdefault("NCCL_NVLS_ENABLE", "0")

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

import ll_reference as llref  # noqa: E402
import reference as ref  # noqa: E402
import nccl_moe  # noqa: E402
from nccl_moe import fused_a2a as fa  # noqa: E402
from nccl_moe import low_latency as ll  # noqa: E402

BF16 = torch.bfloat16
GROUP = None
RANK = 0
RANKS = 1


# ---- comparison helpers ---------------------------------------------------------------------

class Notes(list):
    def add(self, text):
        self.append(text)


def exact(ours, theirs, what):
    if ours is None or theirs is None:
        assert ours is None and theirs is None, "%s: one side is None" % what
        return
    assert tuple(ours.shape) == tuple(theirs.shape), "%s: shape %s != reference %s" % (
        what, tuple(ours.shape), tuple(theirs.shape))
    assert ours.dtype == theirs.dtype, "%s: dtype %s != reference %s" % (what, ours.dtype, theirs.dtype)
    a, b = ours.detach().cpu(), theirs.detach().cpu()
    if a.dtype == ref.FP8:
        a, b = a.view(torch.uint8), b.view(torch.uint8)
    if not torch.equal(a, b):
        bad = (a != b).nonzero()
        raise AssertionError("%s: %d of %d elements differ, first at %s: %s vs reference %s%s"
                             % (what, bad.shape[0], a.numel(), bad[0].tolist(),
                                a[tuple(bad[0])].item(), b[tuple(bad[0])].item(),
                                row_provenance(a, b) if a.dim() == 2 else ""))


def row_provenance(a, b, limit=6):
    """For row-wise outputs: which rows differ, and for the first few of them which reference
    row (if any) the row we got equals. Tells misplaced rows (a permutation or offset) from
    corrupted ones (zeros, garbage)."""
    a_bits = a.view(torch.uint8) if a.dtype == ref.FP8 else a
    b_bits = b.view(torch.uint8) if b.dtype == ref.FP8 else b
    bad_rows = (a_bits != b_bits).any(dim=1).nonzero().flatten().tolist()
    if not bad_rows:
        return ""
    parts = []
    for row in bad_rows[:limit]:
        same = (b_bits == a_bits[row]).all(dim=1).nonzero().flatten().tolist()
        zero = not bool(a_bits[row].bool().any())
        if same:
            parts.append("%d=ref%s" % (row, same[:3]))
        else:
            parts.append("%d=%s" % (row, "zeros" if zero else "no ref row"))
    matched = sum(bool((b_bits == a_bits[r]).all(dim=1).any()) for r in bad_rows[:256])
    return ("\n  %d rows differ (first %d, last %d; of the first %d, %d equal some reference row);"
            " got row -> reference rows: %s"
            % (len(bad_rows), bad_rows[0], bad_rows[-1], min(len(bad_rows), 256), matched,
               ", ".join(parts)))


def sizing_vector(buffer):
    sizing = None if buffer is None else buffer.sizing
    if sizing is None:
        return [-1] * 7
    return [sizing.max_tokens, sizing.max_topk, sizing.experts, sizing.hidden, sizing.row_type,
            int(sizing.fp8), int(sizing.fp8_power_of_two)]


def gather_sizing(buffer):
    """Collective: every rank's communicator sizing (the library needs the same on all ranks)."""
    mine = torch.tensor(sizing_vector(buffer), dtype=torch.int64, device="cuda")
    everyone = [torch.empty_like(mine) for _ in range(RANKS)]
    dist.all_gather(everyone, mine, group=GROUP)
    return [tuple(t.tolist()) for t in everyone]


def check_same_sizing(sizings):
    assert len(set(sizings)) == 1, (
        "ranks created MoE communicators of different sizes (max_tokens, max_topk, experts, hidden, "
        "row_type, fp8, pow2) per rank: %s" % sizings)


def close(ours, theirs, what, notes, rtol=1.6e-2, atol=None):
    """bf16-tolerant comparison; notes whether it was also bit-exact."""
    assert tuple(ours.shape) == tuple(theirs.shape), "%s: shape %s != reference %s" % (
        what, tuple(ours.shape), tuple(theirs.shape))
    a, b = ours.detach().float().cpu(), theirs.detach().float().cpu()
    scale = max(1.0, b.abs().max().item()) if b.numel() else 1.0
    torch.testing.assert_close(a, b, rtol=rtol, atol=(atol if atol is not None else 1e-2 * scale),
                               msg=lambda m: "%s: %s" % (what, m))
    if not torch.equal(a, b):
        notes.add("%s not bit-exact (max diff %.3g)" % (what, (a - b).abs().max().item()))


def grad_values(shape, dtype, gen):
    """Upstream gradients exactly representable in bf16 and E4M3 (multiples of 0.5 in [-4, 4])."""
    ints = torch.randint(-8, 9, shape, generator=gen, device="cuda")
    return (ints.float() * 0.5).to(dtype)


def generator(*key):
    """A CUDA generator seeded from ``key`` (stable across processes, unlike hash())."""
    gen = torch.Generator(device="cuda")
    gen.manual_seed(zlib.crc32(repr(key).encode()))
    return gen


# ---- routing generators ---------------------------------------------------------------------

def make_topk(tokens, experts, topk, gen, masked=0.0, skew=0.0, skew_experts=1):
    scores = torch.rand((tokens, experts), generator=gen, device="cuda")
    if skew:
        scores[:, :skew_experts] += skew
    values, idx = scores.topk(topk, dim=1)
    probs = torch.softmax(values * 4, dim=1).float()
    if masked:
        drop = torch.rand((tokens, topk), generator=gen, device="cuda") < masked
        idx = idx.masked_fill(drop, -1)
        probs = probs.masked_fill(drop, 0.0)
    return idx.to(torch.int64).contiguous(), probs.contiguous()


def to_map(idx, probs, experts):
    tokens = idx.shape[0]
    valid = idx >= 0
    rows = torch.arange(tokens, device="cuda")[:, None].expand_as(idx)[valid]
    cols = idx[valid]
    rmap = torch.zeros((tokens, experts), dtype=torch.bool, device="cuda")
    dense = torch.zeros((tokens, experts), dtype=torch.float32, device="cuda")
    rmap[rows, cols] = True
    dense[rows, cols] = probs[valid]
    return rmap, dense


def tokens_for(base, vary=True, zero_rank=None):
    if zero_rank is not None and RANK == zero_rank % RANKS and RANKS > 1:
        return 0
    return base + (7 * RANK if vary else 0)


# ---- checks: FusedDispatch / FusedCombine ------------------------------------------------------

def fused_case(name, tokens, experts_per_rank, topk, hidden, dtype=BF16, masked=0.0, skew=0.0,
               side_stream=False):
    def check():
        notes = Notes()
        experts = experts_per_rank * RANKS
        gen = generator(name, RANK)
        x = torch.randn((tokens, hidden), generator=gen, device="cuda").to(dtype).requires_grad_()
        idx, probs = make_topk(tokens, experts, min(topk, experts), gen, masked, skew, experts_per_rank)
        probs.requires_grad_()
        stream = torch.cuda.Stream() if side_stream else torch.cuda.current_stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            recv_x, recv_idx, recv_probs, tpe, handle = fa.fused_dispatch(
                x, idx, probs, experts, GROUP, async_finish=True, allocate_on_comm_stream=True)
            g_rx = grad_values(recv_x.shape, dtype, gen)
            g_rp = torch.randn(recv_probs.shape, generator=gen, device="cuda")
            gx, gp = torch.autograd.grad([recv_x, recv_probs], [x, probs], [g_rx, g_rp])
            e = torch.randn(recv_x.shape, generator=gen, device="cuda").to(dtype).requires_grad_()
            y, none = fa.fused_combine(e, GROUP, handle, True, True)
            g_y = grad_values(y.shape, dtype, gen)
            (ge,) = torch.autograd.grad([y], [e], [g_y])
        torch.cuda.current_stream().wait_stream(stream)
        torch.cuda.synchronize()
        r_x, r_idx, r_probs, r_tpe, plan = ref.per_rank_dispatch(x.detach(), idx, probs.detach(),
                                                                 experts, GROUP)
        r_gx = ref.per_rank_combine(g_rx, plan, GROUP, dtype)
        r_gp = ref.per_rank_combine_probs(g_rp, plan, GROUP)
        r_y = ref.per_rank_combine(e.detach(), plan, GROUP, dtype)
        r_ge = ref.per_rank_cached_dispatch(g_y, plan, GROUP)
        torch.cuda.synchronize()
        assert none is None
        assert tpe.device.type == "cpu" and tpe.dtype == torch.int64, "tokens_per_expert %s %s" % (
            tpe.device, tpe.dtype)
        exact(tpe, r_tpe, "tokens_per_expert")
        assert int(tpe.sum()) == int((r_idx >= 0).sum()), "tokens_per_expert sum != local pairs"
        exact(recv_x.detach(), r_x, "recv_x")
        exact(recv_idx, r_idx, "recv_token_indices")
        exact(recv_probs.detach(), r_probs, "recv_token_probs")
        close(gx, r_gx, "dispatch grad x", notes)
        assert gx.dtype == x.dtype
        close(gp, r_gp, "dispatch grad probs", notes, rtol=1e-5, atol=1e-5)
        close(y, r_y, "combine", notes)
        exact(ge, r_ge, "combine grad (cached dispatch)")
        return "T=%d rows=%d %s" % (tokens, recv_x.shape[0], "; ".join(notes))
    return check


def fused_round_trip(name, tokens, experts_per_rank, topk, hidden, masked):
    """Megatron's assertion: dispatch -> * probs -> combine == x * sum(probs), with gradients."""
    def check():
        notes = Notes()
        experts = experts_per_rank * RANKS
        gen = generator(name, RANK)
        x = torch.randn((tokens, hidden), generator=gen, device="cuda").to(BF16).requires_grad_()
        idx, probs = make_topk(tokens, experts, topk, gen, masked)
        probs.requires_grad_()
        recv_x, recv_idx, recv_probs, tpe, handle = fa.fused_dispatch(x, idx, probs, experts, GROUP)
        weighted = (recv_x.float() * recv_probs.sum(dim=1, keepdim=True)).to(BF16)
        y, _ = fa.fused_combine(weighted, GROUP, handle)
        g = grad_values(y.shape, BF16, gen)
        gx, gp = torch.autograd.grad([y], [x, probs], [g])
        torch.cuda.synchronize()
        expected = x.detach().float() * probs.detach().sum(dim=1, keepdim=True)
        close(y, expected, "combine(dispatch(x) * probs)", notes, rtol=2e-2)
        close(gx, g.float() * probs.detach().sum(dim=1, keepdim=True), "grad x", notes, rtol=2e-2)
        exp_gp = (g.float() * x.detach().float()).sum(dim=1, keepdim=True).expand_as(gp) * (idx >= 0)
        close(gp, exp_gp, "grad probs", notes, rtol=3e-2, atol=3e-2 * max(1.0, exp_gp.abs().max().item()))
        return "; ".join(notes)
    return check


# ---- checks: HybridEPDispatch / HybridEPCombine ------------------------------------------------

def _budget(mode, rows_needed, pad):
    """A row budget for non-blocking mode, from the rows the blocking layout needs on this rank:
    "ample" leaves room to spare, "tight" is about half (rows are dropped, overflow is set)."""
    pad = max(1, pad or 1)
    if mode == "ample":
        return (rows_needed // pad + 2) * pad
    return max(pad, (rows_needed // 2) // pad * pad)


def hybrid_case(name, tokens, experts_per_rank, topk, hidden, masked=0.0, skew=0.0, pad=None,
                budget_mode=None, fp8=False, pow2=False, auto_init=False, seq_len=None):
    """``seq_len``: the init_hybrid_ep_buffer hint as a function of the rank (default: this
    rank's T + 7 * ranks, which differs between ranks too)."""
    def check():
        notes = Notes()
        local = experts_per_rank
        experts = local * RANKS
        gen = generator(name, RANK)
        if auto_init:
            fa.reset_hybrid_ep_buffer()
        else:
            hint = tokens + 7 * RANKS if seq_len is None else seq_len(RANK)
            fa.init_hybrid_ep_buffer(GROUP, hidden, hint, local, 24, 24, fp8,
                                     fp8_power_of_two_scales=pow2)
        x = torch.randn((tokens, hidden), generator=gen, device="cuda").to(BF16).requires_grad_()
        idx, probs = make_topk(tokens, experts, min(topk, experts), gen, masked, skew, local)
        rmap, dense = to_map(idx, probs, experts)
        dense.requires_grad_()
        budget = None
        if budget_mode is not None:
            _, _, _, blocking_plan = ref.expert_major_dispatch(x.detach(), rmap, dense.detach(),
                                                               GROUP, pad)
            budget = _budget(budget_mode, blocking_plan.rows_used, pad)
        hidden_out, dprobs, scales, tpe, handle = fa.hybrid_ep_dispatch(
            x, rmap, dense, GROUP, local, 24, 24, num_permuted_tokens=budget, pad_multiple=pad)
        overflow = handle[-1]
        rows = hidden_out.shape[0]
        as_bf16 = hidden_out.to(BF16) if fp8 else hidden_out
        g_h = grad_values((rows, hidden), BF16, gen)
        g_p = torch.randn((rows,), generator=gen, device="cuda")
        gx, gp = torch.autograd.grad([as_bf16, dprobs], [x, dense], [g_h, g_p])
        e = torch.randn((rows, hidden), generator=gen, device="cuda").to(BF16).requires_grad_()
        y = fa.hybrid_ep_combine(e, handle, budget, pad)
        g_y = torch.randn(y.shape, generator=gen, device="cuda").to(BF16)
        (ge,) = torch.autograd.grad([y], [e], [g_y])
        tpe_host = tpe.cpu()
        overflow_host = overflow.cpu()
        torch.cuda.synchronize()
        sizings = gather_sizing(fa._hybrid_ep_buffer)

        r_h, r_p, r_s, plan = ref.expert_major_dispatch(x.detach(), rmap, dense.detach(), GROUP,
                                                        pad, budget, fp8, pow2)
        r_gx = ref.expert_major_combine(g_h, plan, GROUP, BF16)
        r_gp = ref.expert_major_combine_probs(g_p, plan, GROUP, experts)
        r_y = ref.expert_major_combine(e.detach(), plan, GROUP, BF16)
        r_ge = ref.expert_major_cached_dispatch(g_y, plan, GROUP, fp8, pow2)
        torch.cuda.synchronize()

        used = plan.rows_used
        check_same_sizing(sizings)
        if budget is None:
            assert tpe.device.type == "cpu", "blocking mode must return CPU counts"
        else:
            assert tpe.is_cuda, "non-blocking mode must keep the counts on the GPU"
            assert int(tpe_host.sum()) <= budget, "counts exceed the capacity"
        assert tpe.dtype == torch.int64
        exact(tpe_host, torch.tensor(plan.tokens_per_expert, dtype=torch.int64), "tokens_per_expert")
        if pad:
            assert all(c % pad == 0 for c in tpe_host.tolist()), "counts not multiples of pad"
        assert overflow.is_cuda and overflow.dtype == torch.int32, "handle[-1] %s %s" % (
            overflow.device, overflow.dtype)
        assert int(overflow_host[0]) == int(plan.overflow), "overflow flag %d, reference %d" % (
            int(overflow_host[0]), int(plan.overflow))
        assert rows == plan.rows_allocated, "rows %d, reference %d" % (rows, plan.rows_allocated)
        if fp8:
            assert hidden_out.dtype == ref.FP8 and scales is not None
            close(scales[:used], r_s[:used], "scaling_factor", notes, rtol=1e-6, atol=0)
            codes_equal = (hidden_out[:used].detach().view(torch.uint8)
                           == r_h[:used].view(torch.uint8))
            fraction = codes_equal.float().mean().item() if used else 1.0
            assert fraction > 0.999, "only %.4f of the E4M3 codes match the reference%s" % (
                fraction, row_provenance(hidden_out[:used].detach().view(torch.uint8).cpu(),
                                         r_h[:used].view(torch.uint8).cpu()))
            if fraction < 1:
                notes.add("E4M3 codes %.5f equal" % fraction)
        else:
            assert scales is None, "scaling_factor must be None without FP8"
            exact(hidden_out[:used].detach(), r_h[:used], "hidden")
        exact(dprobs[:used].detach(), r_p[:used], "probs")
        close(gx, r_gx, "dispatch grad x", notes)
        close(gp, r_gp, "dispatch grad probs", notes, rtol=1e-5, atol=1e-5)
        close(y, r_y, "combine", notes)
        if fp8:
            close(ge[:used], r_ge[:used], "combine grad (FP8 cached dispatch)", notes, rtol=0.13,
                  atol=0.05 * max(1.0, r_ge.abs().max().item()))
        else:
            exact(ge[:used], r_ge[:used], "combine grad (cached dispatch)")
        return "T=%d rows=%d used=%d overflow=%d max_tokens=%d %s" % (
            tokens, rows, used, int(plan.overflow), sizings[RANK][0], "; ".join(notes))
    return check


def hybrid_round_trip(name, tokens, experts_per_rank, topk, hidden, masked, pad):
    """Megatron's assertions on HybridEP: dispatch -> * probs -> combine == x * sum(probs) with
    gradients; padding changes nothing; counts are multiples of pad_multiple."""
    def check():
        notes = Notes()
        local = experts_per_rank
        experts = local * RANKS
        gen = generator(name, RANK)
        fa.init_hybrid_ep_buffer(GROUP, hidden, tokens + 7 * RANKS, local, 24, 24, False)
        x0 = torch.randn((tokens, hidden), generator=gen, device="cuda").to(BF16)
        idx, probs = make_topk(tokens, experts, topk, gen, masked)
        rmap, dense0 = to_map(idx, probs, experts)
        results = []
        for pad_multiple in (None, pad):
            x = x0.clone().requires_grad_()
            dense = dense0.clone().requires_grad_()
            h, p, _, tpe, handle = fa.hybrid_ep_dispatch(x, rmap, dense, GROUP, local,
                                                         pad_multiple=pad_multiple)
            y = fa.hybrid_ep_combine((h.float() * p[:, None]).to(BF16), handle, None, pad_multiple)
            g = grad_values(y.shape, BF16, generator(name, RANK, "g"))
            gx, gp = torch.autograd.grad([y], [x, dense], [g])
            results.append((y, gx, gp, tpe))
        torch.cuda.synchronize()
        check_same_sizing(gather_sizing(fa._hybrid_ep_buffer))
        expected = x0.float() * dense0.sum(dim=1, keepdim=True)
        for (y, gx, gp, tpe), pad_multiple in zip(results, (None, pad)):
            label = "pad=%s" % pad_multiple
            close(y, expected, label + " combine(dispatch(x) * probs)", notes, rtol=2e-2)
            g = grad_values(y.shape, BF16, generator(name, RANK, "g")).float()
            close(gx, g * dense0.sum(dim=1, keepdim=True), label + " grad x", notes, rtol=2e-2)
            exp_gp = (g * x0.float()).sum(dim=1, keepdim=True).expand_as(gp) * rmap
            close(gp, exp_gp, label + " grad probs", notes, rtol=3e-2,
                  atol=3e-2 * max(1.0, exp_gp.abs().max().item()))
            if pad_multiple:
                assert all(c % pad_multiple == 0 for c in tpe.tolist()), "counts not padded"
        exact(results[0][0], results[1][0], "combine with and without padding")
        exact(results[0][1], results[1][1], "grad x with and without padding")
        return "; ".join(notes)
    return check


# ---- checks: the ncclep backend (Megatron 0.19's nccl_ep_* functions) ---------------------------

def ncclep_case(name, tokens, experts_per_rank, topk, hidden, alignment=0, capacity_mode="ample",
                caller_buffers=False, masked=0.0, skew=0.0):
    """nccl_ep_dispatch / nccl_ep_combine against the reference: a top-k routing lands exactly as
    the equivalent routing map does in expert-major order (per local expert, by source rank, then
    token), padded to ``alignment``, in a fixed receive capacity. "tight" capacities drop rows; the
    ranks that dropped some must get the error at finalize, the others not."""
    def check():
        notes = Notes()
        local = experts_per_rank
        experts = local * RANKS
        gen = generator(name, RANK)
        x = torch.randn((tokens, hidden), generator=gen, device="cuda").to(BF16).requires_grad_()
        idx, probs = make_topk(tokens, experts, min(topk, experts), gen, masked, skew, local)
        rmap, dense = to_map(idx, probs, experts)
        _, _, _, blocking_plan = ref.expert_major_dispatch(x.detach(), rmap, dense, GROUP,
                                                           alignment or None)
        capacity = _budget(capacity_mode, blocking_plan.rows_used, alignment)
        max_tokens = tokens + 64
        fa.ensure_nccl_ep_bootstrapped(GROUP, experts, max_tokens, capacity, hidden)
        fa.ensure_nccl_ep_bootstrapped(GROUP, experts, max_tokens, capacity, hidden)  # a no-op
        buffer = fa.new_nccl_ep_buffer(min(topk, experts), max_tokens, capacity, hidden, local,
                                       alignment)
        recv_buf = fa.alloc_ep_symm_buffer((capacity, hidden), BF16, GROUP) if caller_buffers else None
        probs_buf = fa.alloc_ep_symm_buffer((capacity,), torch.float32, GROUP) if caller_buffers else None
        grad_buf = fa.alloc_ep_symm_buffer((capacity, hidden), BF16, GROUP) if caller_buffers else None
        probs_in = probs.clone().requires_grad_()
        finalize_error = None
        try:
            recv, tpe, dprobs = fa.nccl_ep_dispatch(buffer, x, idx, probs_in, recv_tokens=recv_buf,
                                                    recv_topk_weights=probs_buf)
            g_h = grad_values((capacity, hidden), BF16, gen)
            g_p = torch.randn((capacity,), generator=gen, device="cuda")
            gx, gp = torch.autograd.grad([recv, dprobs], [x, probs_in], [g_h, g_p])
            e = torch.randn((capacity, hidden), generator=gen, device="cuda").to(BF16).requires_grad_()
            y = fa.nccl_ep_combine(buffer, e, num_local_tokens=tokens, grad_out=grad_buf)
            g_y = torch.randn(y.shape, generator=gen, device="cuda").to(BF16)
            (ge,) = torch.autograd.grad([y], [e], [g_y])
            tpe_host = tpe.cpu()
            torch.cuda.synchronize()
        finally:
            try:
                fa.nccl_ep_finalize()  # collective: every rank, whatever happened above
            except RuntimeError as error:
                finalize_error = str(error)

        r_h, r_p, _, plan = ref.expert_major_dispatch(x.detach(), rmap, dense, GROUP,
                                                      alignment or None, capacity)
        r_gx = ref.expert_major_combine(g_h, plan, GROUP, BF16)
        r_gp_dense = ref.expert_major_combine_probs(g_p, plan, GROUP, experts)
        r_y = ref.expert_major_combine(e.detach(), plan, GROUP, BF16)
        r_ge = ref.expert_major_cached_dispatch(g_y, plan, GROUP)
        torch.cuda.synchronize()

        used = plan.rows_used
        assert tpe.is_cuda and tpe.dtype == torch.int32 and tuple(tpe.shape) == (local,), (
            "tokens_per_expert must be int32 [%d] on the GPU, got %s %s %s"
            % (local, tpe.device, tpe.dtype, tuple(tpe.shape)))
        exact(tpe_host, torch.tensor(plan.tokens_per_expert, dtype=torch.int32), "tokens_per_expert")
        assert tuple(recv.shape) == (capacity, hidden) and tuple(dprobs.shape) == (capacity,)
        if caller_buffers:
            assert recv.data_ptr() == recv_buf.data_ptr(), "recv_tokens was not written in place"
            assert dprobs.data_ptr() == probs_buf.data_ptr(), "recv_topk_weights not in place"
            assert ge.data_ptr() == grad_buf.data_ptr(), "grad_out was not written in place"
        exact(recv[:used].detach(), r_h[:used], "recv_tokens")
        exact(dprobs[:used].detach(), r_p[:used], "dispatched_probs")
        close(gx, r_gx, "dispatch grad tokens", notes)
        valid = idx >= 0
        r_gp = torch.where(valid, r_gp_dense.gather(1, idx.clamp(min=0)), torch.zeros_like(gp))
        close(gp, r_gp, "dispatch grad topk_weights", notes, rtol=1e-5, atol=1e-5)
        close(y, r_y, "combine", notes)
        exact(ge[:used], r_ge[:used], "combine grad (dispatch of the gradient)")
        if plan.overflow:
            assert finalize_error and "recv_capacity_per_rank=%d" % capacity in finalize_error, (
                "rows were dropped but no error was raised: %r" % finalize_error)
            notes.add("dropped rows reported")
        else:
            assert finalize_error is None, "no rows were dropped but: %s" % finalize_error
        return "T=%d capacity=%d used=%d overflow=%d %s" % (tokens, capacity, used,
                                                            int(plan.overflow), "; ".join(notes))
    return check


# ---- checks: buffers, errors, integration -----------------------------------------------------

def stale_handle_after_growth():
    fa.reset_buffer()
    gen = generator("stale", RANK)
    experts, hidden = 2 * RANKS, 128
    x = torch.randn((8, hidden), generator=gen, device="cuda").to(BF16)
    idx, probs = make_topk(8, experts, 2, gen)
    recv_x, _, _, _, old = fa.fused_dispatch(x, idx, probs, experts, GROUP)
    before = fa._buffer.sizing.max_tokens
    native = fa._buffer.comm.ptr.value
    bytes_before = fa._buffer.comm.info().bufferBytes
    generation = old.generation
    big = before + 1 if RANK == 0 else 4  # only rank 0 needs more: every rank must still grow
    x2 = torch.randn((big, hidden), generator=gen, device="cuda").to(BF16)
    idx2, probs2 = make_topk(big, experts, 2, gen)
    recv2, _, _, _, new = fa.fused_dispatch(x2, idx2, probs2, experts, GROUP)
    y2, _ = fa.fused_combine(recv2, GROUP, new)
    assert fa._buffer.sizing.max_tokens >= before + 1, "buffer did not grow"
    assert new.generation != generation, "generation did not change"
    # Only T grew: the communicator was resized in place (ncclMoeCommResize), not re-created.
    assert fa._buffer.comm.ptr.value == native, "the communicator was re-created instead of resized"
    assert fa._buffer.comm.info().bufferBytes > bytes_before, "the resized buffer is not larger"
    try:
        fa.fused_combine(recv_x, GROUP, old)
    except nccl_moe.StaleHandleError as error:
        message = str(error)
    else:
        raise AssertionError("a handle from before the growth was accepted")
    assert "stale" in message, message
    torch.cuda.synchronize()
    return "resized in place %d -> %d tokens; error: %s" % (before, fa._buffer.sizing.max_tokens, message[:80])


def non_blocking_over_capacity_is_a_clear_error():
    hidden, local = 128, 2
    fa.init_hybrid_ep_buffer(GROUP, hidden, 64, local, 24, 24, False)
    gen = generator("capacity", RANK)
    experts = local * RANKS

    def call(tokens):
        x = torch.randn((tokens, hidden), generator=gen, device="cuda").to(BF16)
        idx, probs = make_topk(tokens, experts, 2, gen)
        rmap, dense = to_map(idx, probs, experts)
        return fa.hybrid_ep_dispatch(x, rmap, dense, GROUP, local, num_permuted_tokens=4096)

    call(32)  # creates the communicator, sized for seq_len=64
    try:
        call(100)  # every rank exceeds it: each raises before any communication
    except ValueError as error:
        message = str(error)
    else:
        raise AssertionError("T above the buffer's size was accepted in non-blocking mode")
    assert "non-blocking" in message, message
    return message[:100]


def bad_routing_is_reported_everywhere():
    fa.reset_buffer()
    gen = generator("bad", RANK)
    experts, hidden = 2 * RANKS, 64
    x = torch.randn((16, hidden), generator=gen, device="cuda").to(BF16)
    idx, probs = make_topk(16, experts, 2, gen)
    if RANK == 0:
        idx[3, 1] = experts  # out of range
    try:
        fa.fused_dispatch(x, idx, probs, experts, GROUP)
    except nccl_moe.NcclMoeError as error:
        message = str(error)
    else:
        raise AssertionError("an expert id out of range was accepted")
    # The communicator stays usable.
    idx, probs = make_topk(16, experts, 2, gen)
    recv_x, _, _, _, handle = fa.fused_dispatch(x, idx, probs, experts, GROUP)
    y, _ = fa.fused_combine(recv_x, GROUP, handle)
    torch.cuda.synchronize()
    return message[:160]


def megatron_install_patches_imported_modules():
    import nccl_moe.megatron as nm

    names = ["megatron", "megatron.core", "megatron.core.transformer", "megatron.core.transformer.moe",
             "megatron.core.transformer.moe.fused_a2a", "megatron.core.transformer.moe.token_dispatcher"]
    saved = {n: sys.modules.get(n) for n in names}
    try:
        for n in names:
            sys.modules[n] = types.ModuleType(n)
        original = sys.modules["megatron.core.transformer.moe.fused_a2a"]
        original.fused_dispatch = None  # what Megatron defines without DeepEP
        original.hybrid_ep_dispatch = None
        dispatcher = sys.modules["megatron.core.transformer.moe.token_dispatcher"]
        dispatcher.fused_dispatch = None
        dispatcher.hybrid_ep_dispatch = None
        dispatcher.unrelated = None
        replaced = nm.install()
        assert dispatcher.fused_dispatch is fa.fused_dispatch
        assert dispatcher.hybrid_ep_dispatch is fa.hybrid_ep_dispatch
        assert dispatcher.unrelated is None
        assert sys.modules["megatron.core.transformer.moe.fused_a2a"] is fa
        assert original.fused_dispatch is fa.fused_dispatch
        return "replaced %s" % ", ".join(sorted(replaced))
    finally:
        for n, module in saved.items():
            if module is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = module


# ---- the small MoE layer ----------------------------------------------------------------------

class OurBackend:
    def __init__(self, local, pad):
        self.local, self.pad = local, pad

    def fused_dispatch(self, x, idx, probs, experts):
        return fa.fused_dispatch(x, idx, probs, experts, GROUP, True, True)

    def fused_combine(self, y, handle):
        return fa.fused_combine(y, GROUP, handle, True, True)[0]

    def hybrid_dispatch(self, x, rmap, dense):
        h, p, _, tpe, handle = fa.hybrid_ep_dispatch(x, rmap, dense, GROUP, self.local,
                                                     pad_multiple=self.pad)
        return h, p, tpe, handle

    def hybrid_combine(self, y, handle):
        return fa.hybrid_ep_combine(y, handle, None, self.pad)


class RefBackend(OurBackend):
    def fused_dispatch(self, x, idx, probs, experts):
        return ref.RefFusedDispatch.apply(x, idx, probs, experts, GROUP)

    def fused_combine(self, y, plan):
        return ref.RefFusedCombine.apply(y, GROUP, plan)

    def hybrid_dispatch(self, x, rmap, dense):
        return ref.RefHybridDispatch.apply(x, rmap, dense, GROUP, self.pad, None)

    def hybrid_combine(self, y, plan):
        return ref.RefHybridCombine.apply(y, GROUP, plan)


def moe_layer(params, x, backend, path, topk):
    router, w1, w2 = params
    local = w1.shape[0]
    experts = router.shape[1]
    scores = torch.softmax(x.float() @ router, dim=-1)
    top_p, top_i = scores.topk(topk, dim=-1)
    top_p = top_p / top_p.sum(dim=-1, keepdim=True)
    if path == "fused":
        recv_x, recv_idx, recv_probs, _, handle = backend.fused_dispatch(x, top_i, top_p, experts)
        out = torch.zeros(recv_x.shape, dtype=torch.float32, device="cuda")
        for j in range(local):
            mask = recv_idx == j
            rows = mask.any(dim=1).nonzero().flatten()
            weight = (recv_probs * mask).sum(dim=1)[rows]
            h = torch.relu(recv_x[rows].float() @ w1[j]) @ w2[j]
            out = out.index_add(0, rows, h * weight[:, None])
        return backend.fused_combine(out.to(BF16), handle)
    rmap = torch.zeros(scores.shape, dtype=torch.bool, device="cuda").scatter(1, top_i, True)
    dense = torch.zeros(scores.shape, dtype=torch.float32, device="cuda").scatter(1, top_i, top_p)
    hidden, probs, tpe, handle = backend.hybrid_dispatch(x, rmap, dense)
    segments = hidden.split(tpe.tolist())
    out = torch.cat([torch.relu(seg.float() @ w1[j]) @ w2[j] for j, seg in enumerate(segments)])
    return backend.hybrid_combine((out * probs[:, None]).to(BF16), handle)


def moe_training(path, pad=None, steps=3):
    def check():
        notes = Notes()
        hidden, ffn, local, topk = 128, 64, 2, 2
        experts = local * RANKS
        shared = generator("moe-router")
        router = torch.randn((hidden, experts), generator=shared, device="cuda") * 0.1
        mine = generator("moe-experts", RANK)
        w1 = torch.randn((local, hidden, ffn), generator=mine, device="cuda") * hidden ** -0.5
        w2 = torch.randn((local, ffn, hidden), generator=mine, device="cuda") * ffn ** -0.5
        if path == "hybrid":
            fa.reset_hybrid_ep_buffer()  # HybridEPDispatch creates it, as in Megatron
        runs = {}
        for label, backend in (("ours", OurBackend(local, pad)), ("reference", RefBackend(local, pad))):
            params = [t.clone().requires_grad_() for t in (router, w1, w2)]
            losses, grads = [], []
            for step in range(steps):
                data = generator("moe-data", RANK, step)
                tokens = 24 + 5 * RANK + step
                x = torch.randn((tokens, hidden), generator=data, device="cuda").to(BF16)
                target = torch.randn((tokens, hidden), generator=data, device="cuda")
                y = moe_layer(params, x, backend, path, topk)
                loss = ((y.float() - target) ** 2).mean()
                loss.backward()
                losses.append(loss.detach())
                grads.append([p.grad.detach().clone() for p in params])
                with torch.no_grad():
                    for p in params:
                        p -= 0.5 * p.grad
                        p.grad = None
            runs[label] = (losses, grads, params)
        torch.cuda.synchronize()
        (l_ours, g_ours, p_ours), (l_ref, g_ref, p_ref) = runs["ours"], runs["reference"]
        for step in range(steps):
            close(l_ours[step], l_ref[step], "loss step %d" % step, notes, rtol=1e-3, atol=1e-5)
            for name, a, b in zip(("router", "w1", "w2"), g_ours[step], g_ref[step]):
                close(a, b, "grad %s step %d" % (name, step), notes, rtol=2e-2,
                      atol=1e-3 * max(1e-3, b.abs().max().item()))
        for name, a, b in zip(("router", "w1", "w2"), p_ours, p_ref):
            close(a, b, "trained %s" % name, notes, rtol=2e-2, atol=1e-4)
        return "losses %s; %s" % ([round(v.item(), 5) for v in l_ours], "; ".join(notes[:4]))
    return check


# ---- checks: the low-latency mode (nccl_moe.low_latency, docs/low_latency.md) ----------------------

def ll_buffer(experts, hidden, max_tokens, max_topk, fp8=0):
    return ll.LowLatencyBuffer(GROUP, experts, hidden, max_tokens, max_topk=max_topk, fp8=fp8 > 0,
                               fp8_power_of_two_scales=fp8 == 2, num_sms=8)


def ll_inputs(key, tokens, experts, topk, hidden, masked=0.0, skew=0.0, skew_experts=1):
    """x [T, H] bf16, ids [T, K] int64 (-1 masked), weights [T, K] fp32 in [-1, 1] (full precision)."""
    gen = generator(*key)
    x = (torch.randn((tokens, hidden), generator=gen, device="cuda") * 2).to(BF16)
    idx, _ = make_topk(tokens, experts, topk, gen, masked, skew, skew_experts)
    weights = torch.rand((tokens, topk), generator=gen, device="cuda") * 2 - 1
    return x, idx, weights


def ll_expert_rows(buffer, key):
    """Random expert outputs [L, P, H] bf16 (rows past the counts are never read)."""
    return torch.randn(buffer.sizing.recv_x_shape, generator=generator(*key), device="cuda").to(BF16)


def ll_domain_experts(buffer, experts):
    """Experts per NVLink domain of the buffer's communicator, for the reference's combine order
    (None with one domain)."""
    return None if buffer.domains == 1 else experts // buffer.domains


def ll_check_dispatch(what, buffer, received, count, handle, layout):
    """This rank's dispatch outputs bit for bit: counts, rows (FP8: codes and scales) and the
    source info below the counts."""
    fp8 = buffer.sizing.fp8
    recv_x, scales = received if fp8 else (received, None)
    exact(count.cpu(), torch.tensor(layout.counts, dtype=torch.int32), what + " recv_count")
    for l, used in enumerate(layout.counts):
        exact(recv_x[l, :used], layout.rows[l], "%s segment %d rows" % (what, l))
        exact(handle.recv_src_info[l, :used], layout.src[l], "%s segment %d source info" % (what, l))
        if fp8:
            exact(scales[l, :used], layout.scales[l], "%s segment %d FP8 scales" % (what, l))


def ll_case(name, tokens, experts_per_rank, topk, hidden, masked=0.0, skew=0.0, fp8=0, max_topk=None,
            zero_rank=None):
    """One dispatch, a weighted and an unweighted combine, against the reference bit for bit; T
    differs per rank (up to N = max_tokens), one rank may have none."""
    def check():
        experts = experts_per_rank * RANKS
        max_tokens = tokens + 7 * RANKS
        buffer = ll_buffer(experts, hidden, max_tokens, max_topk or topk, fp8)
        try:
            # skew: every token's first pick is expert 0 (all tokens to one expert).
            x, idx, w = ll_inputs((name, RANK), tokens_for(tokens, zero_rank=zero_rank), experts, topk, hidden,
                                  masked, skew, 1)
            received, count, handle, hook = buffer.dispatch(x, idx)
            assert hook is None, "a plain dispatch returned a hook"
            y = ll_expert_rows(buffer, (name, RANK, "y"))
            out_w, _ = buffer.combine(y, handle, w)
            out_u, _ = buffer.combine(y, handle)
            torch.cuda.synchronize()
            buffer.async_error()
            xs = llref.gather_padded(x, max_tokens, 0, GROUP)
            ids = llref.gather_padded(idx, max_tokens, -1, GROUP)
            layout = llref.dispatch_expected(xs, ids, RANK, experts_per_rank, fp8)
            per_slot = llref.expert_rows_at_source(y, layout, GROUP, x.shape[0], topk)
            torch.cuda.synchronize()
        finally:
            buffer.destroy()
        formula = buffer.sizing.buffer_bytes(RANKS // buffer.domains)
        assert buffer.buffer_bytes == formula, (
            "lowLatencyBufferBytes %d, the contract's formula %d" % (buffer.buffer_bytes, formula))
        ll_check_dispatch("dispatch", buffer, received, count, handle, layout)
        exact(out_w, llref.combine_expected(per_slot, idx, w, ll_domain_experts(buffer, experts)), "weighted combine")
        exact(out_u, llref.combine_expected(per_slot, idx, None, ll_domain_experts(buffer, experts)), "unweighted combine")
        return "T=%d rows=%d LL bytes %d" % (x.shape[0], sum(layout.counts), buffer.buffer_bytes)
    return check


def ll_hooks():
    """Two dispatches and two combines split into send halves with work between the halves, the
    inputs overwritten after the send halves; hooks out of order, twice, or a third send half are
    refused before anything is enqueued (every rank takes the same path)."""
    name, tokens, local, topk, hidden = "ll/hooks", tokens_for(20), 2, 3, 128
    experts, max_tokens = local * RANKS, 20 + 7 * RANKS
    buffer = ll_buffer(experts, hidden, max_tokens, topk)
    refusals = []
    try:
        xa, ida, wa = ll_inputs((name, RANK, "a"), tokens, experts, topk, hidden, masked=0.2)
        xb, idb, _ = ll_inputs((name, RANK, "b"), tokens, experts, topk, hidden)
        keep_a, keep_b = xa.clone(), xb.clone()
        ra, ca, ha, hook_a = buffer.dispatch(xa, ida, return_recv_hook=True)
        rb, cb, hb, hook_b = buffer.dispatch(xb, idb, return_recv_hook=True)
        for attempt in (lambda: buffer.dispatch(xa, ida, return_recv_hook=True), lambda: buffer.dispatch(xa, ida),
                        hook_b, lambda: buffer.combine(torch.zeros_like(ra), ha)):
            try:
                attempt()
            except ll.HookOrderError as error:
                refusals.append(str(error))
        work = torch.randn((512, 512), device="cuda")
        for _ in range(4):
            work = work @ work.t() / 512
        xa.fill_(7.0)  # the send halves have read them: the receive halves must not
        xb.fill_(-3.0)
        hook_a()
        hook_b()
        try:
            hook_a()
        except ll.HookOrderError as error:
            refusals.append(str(error))
        ya, yb = ll_expert_rows(buffer, (name, RANK, "ya")), ll_expert_rows(buffer, (name, RANK, "yb"))
        out_a, hook_ca = buffer.combine(ya, ha, wa, return_recv_hook=True)
        out_b, hook_cb = buffer.combine(yb, hb, return_recv_hook=True)
        work = work @ work.t() / 512
        ya.fill_(1.0)
        hook_ca()
        hook_cb()
        torch.cuda.synchronize()
        buffer.async_error()
        layouts, per_slot = [], []
        for x, idx, y in ((keep_a, ida, ll_expert_rows(buffer, (name, RANK, "ya"))), (keep_b, idb, yb)):
            layout = llref.dispatch_expected(llref.gather_padded(x, max_tokens, 0, GROUP),
                                             llref.gather_padded(idx, max_tokens, -1, GROUP), RANK, local)
            layouts.append(layout)
            per_slot.append(llref.expert_rows_at_source(y, layout, GROUP, tokens, topk))
        torch.cuda.synchronize()
    finally:
        buffer.destroy()
    assert len(refusals) == 5, "expected 5 refusals, got %d: %s" % (len(refusals), refusals)
    assert "third low-latency dispatch send half" in refusals[0], refusals[0]
    assert "plain low-latency dispatch while 2" in refusals[1], refusals[1]
    assert "#2's hook called before the hook of the older dispatch #1" in refusals[2], refusals[2]
    assert "before its receive hook was called" in refusals[3], refusals[3]
    assert "was already called" in refusals[4], refusals[4]
    ll_check_dispatch("split dispatch a", buffer, ra, ca, ha, layouts[0])
    ll_check_dispatch("split dispatch b", buffer, rb, cb, hb, layouts[1])
    exact(out_a, llref.combine_expected(per_slot[0], ida, wa, ll_domain_experts(buffer, experts)),
          "split weighted combine")
    exact(out_b, llref.combine_expected(per_slot[1], idb, None, ll_domain_experts(buffer, experts)),
          "split unweighted combine")
    return "refusals: " + " | ".join(r[:50] for r in refusals)


def ll_graph(split):
    """Dispatch, an expert (y = 2 * rows) and a weighted combine captured once in a CUDA graph with
    caller outputs, replayed with fresh x, ids and weights at the same addresses; every replay
    bit-exact. ``split``: the graph holds send halves and their hooks."""
    def check():
        name, local, topk, hidden = "ll/graph", 2, 4, 192
        experts, max_tokens = local * RANKS, 24 + 7 * RANKS
        tokens = tokens_for(24)
        buffer = ll_buffer(experts, hidden, max_tokens, topk)
        results = []
        try:
            x, idx, w = ll_inputs((name, RANK, "warm"), tokens, experts, topk, hidden)
            outs = buffer.dispatch_outputs()
            y = torch.empty(buffer.sizing.recv_x_shape, dtype=BF16, device="cuda")
            out = torch.empty((tokens, hidden), dtype=BF16, device="cuda")

            def step():
                _, _, handle, hook = buffer.dispatch(x, idx, out=outs, return_recv_hook=split)
                if hook is not None:
                    hook()
                torch.mul(outs.recv_x, 2, out=y)
                _, hook = buffer.combine(y, handle, w, out=out, return_recv_hook=split)
                if hook is not None:
                    hook()
                return handle

            handle = step()  # eagerly once before the capture
            torch.cuda.synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                handle = step()
            for replay in range(4):
                nx, nidx, nw = ll_inputs((name, RANK, replay), tokens, experts, topk, hidden, masked=0.1 * replay)
                x.copy_(nx)
                idx.copy_(nidx)
                w.copy_(nw)
                out.fill_(float("nan"))
                graph.replay()
                torch.cuda.synchronize()
                buffer.async_error()
                layout = llref.dispatch_expected(llref.gather_padded(nx, max_tokens, 0, GROUP),
                                                 llref.gather_padded(nidx, max_tokens, -1, GROUP), RANK, local)
                per_slot = llref.expert_rows_at_source(y, layout, GROUP, tokens, topk)
                results.append((layout, outs.recv_count.clone(), [outs.recv_x[l].clone() for l in range(local)],
                                handle.recv_src_info.clone(), out.clone(),
                                llref.combine_expected(per_slot, nidx, nw, ll_domain_experts(buffer, experts))))
            torch.cuda.synchronize()
        finally:
            buffer.destroy()
        for replay, (layout, count, rows, src, got, want) in enumerate(results):
            what = "replay %d" % replay
            exact(count.cpu(), torch.tensor(layout.counts, dtype=torch.int32), what + " recv_count")
            for l, used in enumerate(layout.counts):
                exact(rows[l][:used], layout.rows[l], "%s segment %d rows" % (what, l))
                exact(src[l, :used], layout.src[l], "%s segment %d source info" % (what, l))
            exact(got, want, what + " weighted combine")
        return "%d replays%s" % (len(results), " (split halves in the graph)" if split else "")
    return check


def ll_autograd():
    """dispatch's backward = unweighted combine of the row gradients (bit-exact); the combine's
    backward: y's gradient bf16(fp32(w * g)) in the dispatch layout, zero past the counts
    (bit-exact), the weights' gradient <g[t], y(e_k, t)> (fp32 sums in another order: close)."""
    name, local, topk, hidden = "ll/autograd", 2, 3, 160
    experts, max_tokens = local * RANKS, 18 + 7 * RANKS
    tokens = tokens_for(18, zero_rank=1)
    notes = Notes()
    buffer = ll_buffer(experts, hidden, max_tokens, topk)
    try:
        x, idx, w = ll_inputs((name, RANK), tokens, experts, topk, hidden, masked=0.25)
        x.requires_grad_()
        recv_x, count, handle, _ = buffer.dispatch(x, idx)
        g_rows = ll_expert_rows(buffer, (name, RANK, "g_rows"))
        (gx,) = torch.autograd.grad([recv_x], [x], [g_rows])
        y = ll_expert_rows(buffer, (name, RANK, "y")).requires_grad_()
        weights = w.clone().requires_grad_()
        out, _ = buffer.combine(y, handle, weights)
        g_out = (torch.randn((tokens, hidden), generator=generator(name, RANK, "g"), device="cuda") * 3).to(BF16)
        gy, gw = torch.autograd.grad([out], [y, weights], [g_out])
        y2 = ll_expert_rows(buffer, (name, RANK, "y2")).requires_grad_()
        out2, _ = buffer.combine(y2, handle)
        (gy2,) = torch.autograd.grad([out2], [y2], [g_out])
        torch.cuda.synchronize()
        buffer.async_error()
        layout = llref.dispatch_expected(llref.gather_padded(x.detach(), max_tokens, 0, GROUP),
                                         llref.gather_padded(idx, max_tokens, -1, GROUP), RANK, local)
        grads = llref.gather_padded(g_out, max_tokens, 0, GROUP)
        weights_all = llref.gather_padded(w, max_tokens, 0, GROUP)
        g_per_slot = llref.expert_rows_at_source(g_rows, layout, GROUP, tokens, topk)
        y_per_slot = llref.expert_rows_at_source(y.detach(), layout, GROUP, tokens, topk)
        torch.cuda.synchronize()
    finally:
        buffer.destroy()
    exact(gx, llref.combine_expected(g_per_slot, idx, None, ll_domain_experts(buffer, experts)),
          "dispatch grad x (unweighted combine of the row grads)")
    want_rows = llref.weighted_rows_expected(layout, grads, weights_all, hidden)
    for l, used in enumerate(layout.counts):
        exact(gy[l, :used], want_rows[l], "combine grad y segment %d" % l)
        exact(gy2[l, :used], layout_rows_of(grads, layout.src[l], hidden), "unweighted combine grad y segment %d" % l)
        assert not gy[l, used:].any() and not gy2[l, used:].any(), "grad y past the count is not zero"
    want_w = (g_out.double().unsqueeze(1) * y_per_slot.double()).sum(dim=2) * (idx >= 0)
    scale = (g_out.double().abs().unsqueeze(1) * y_per_slot.double().abs()).sum(dim=2).max().item() if tokens else 1.0
    # fp32 dot products over H bf16 products in another order: |error| <= ~H x 2^-24 x sum |g y|.
    close(gw, want_w.float(), "combine grad weights", notes, rtol=1e-5, atol=hidden * 2.0 ** -23 * max(1.0, scale))
    assert gx.dtype == BF16 and gw.dtype == torch.float32
    return "T=%d %s" % (tokens, "; ".join(notes))


def layout_rows_of(rows_by_rank, src, hidden):
    """rows_by_rank[s][t] for each (s, t, k) of ``src``: what an unweighted backward dispatch delivers."""
    if src.shape[0] == 0:
        return torch.zeros((0, hidden), dtype=BF16, device="cuda")
    return torch.stack([rows_by_rank[s][t] for s, t in src[:, :2].tolist()])


def ll_errors():
    """Host-side refusals (before any collective call, alike on every rank), then a bad expert id
    on rank 0: reported on every rank through async_error, no output written."""
    local, topk, hidden, max_tokens = 2, 2, 64, 16
    experts = local * RANKS
    messages = []
    buffer = ll_buffer(experts, hidden, max_tokens, topk)
    try:
        x, idx, w = ll_inputs(("ll/errors", RANK), 8, experts, topk, hidden)
        big_x, big_idx, _ = ll_inputs(("ll/errors", RANK, "big"), max_tokens + 1, experts, topk, hidden)
        for attempt in (lambda: buffer.dispatch(big_x, big_idx),
                        lambda: buffer.dispatch(x, idx[:, :1].expand(8, 3).contiguous()),
                        lambda: buffer.combine(torch.zeros((8, hidden), dtype=BF16, device="cuda"), None)):
            try:
                attempt()
            except (ValueError, TypeError) as error:
                messages.append(str(error))
        bad = idx.clone()
        if RANK == 0:
            bad[0, 1] = experts + 5
        outs = buffer.dispatch_outputs()
        outs.recv_x.fill_(1.5)
        outs.recv_count.fill_(-7)
        buffer.dispatch(x, bad, out=outs)
        torch.cuda.synchronize()
        try:
            buffer.async_error()
        except nccl_moe.NcclMoeError as error:
            messages.append(str(error))
        untouched = bool((outs.recv_x == 1.5).all()) and bool((outs.recv_count == -7).all())
    finally:
        buffer.destroy()
    assert len(messages) == 4, "expected 4 errors, got %s" % messages
    assert "takes at most max_tokens=16" in messages[0], messages[0]
    assert "top-k must lie in [1, max_topk=2]" in messages[1], messages[1]
    assert "handle must come from a dispatch" in messages[2], messages[2]
    assert "rank 0 token 0 slot 1" in messages[3] and "out of range" in messages[3], messages[3]
    assert untouched, "an output was written despite the routing fault"
    fp8 = ll_buffer(experts, hidden, max_tokens, topk, fp8=1)
    try:
        fp8.dispatch(x.clone().requires_grad_(), idx)
    except ValueError as error:
        messages.append(str(error))
    finally:
        fp8.destroy()
    assert "not differentiable" in messages[-1], messages[-1]
    return messages[3][:120]


# ---- the list of checks -----------------------------------------------------------------------

def all_checks():
    checks = [
        ("fused/random", fused_case("fused/random", tokens_for(37), 4, 4, 256)),
        ("fused/masked_side_stream", fused_case("fused/masked_side_stream", tokens_for(40), 2, 3, 192,
                                                masked=0.3, side_stream=True)),
        ("fused/skewed_zero_rank", fused_case("fused/skewed_zero_rank", tokens_for(50, zero_rank=1), 4,
                                              2, 128, skew=3.0)),
        ("fused/top1_odd_hidden", fused_case("fused/top1_odd_hidden", tokens_for(33), 1, 1, 200)),
        ("fused/fp32_rows", fused_case("fused/fp32_rows", tokens_for(21), 2, 2, 96, dtype=torch.float32)),
        ("fused/megatron_round_trip", fused_round_trip("fused/megatron_round_trip", tokens_for(45), 4, 4,
                                                       256, masked=0.2)),
        ("hybrid/blocking", hybrid_case("hybrid/blocking", tokens_for(40), 4, 3, 256)),
        ("hybrid/auto_init_masked", hybrid_case("hybrid/auto_init_masked", tokens_for(31), 2, 4, 128,
                                                masked=0.3, auto_init=True)),
        ("hybrid/pad8_skewed_zero_rank", hybrid_case("hybrid/pad8_skewed_zero_rank",
                                                     tokens_for(48, zero_rank=0), 4, 4, 128, skew=3.0,
                                                     pad=8)),
        ("hybrid/per_rank_seq_len", hybrid_case("hybrid/per_rank_seq_len", tokens_for(20), 2, 2, 128,
                                                pad=4, seq_len=lambda rank: 8 + 100 * rank)),
        ("hybrid/budget_ample", hybrid_case("hybrid/budget_ample", tokens_for(36), 4, 3, 128, pad=4,
                                            budget_mode="ample")),
        ("hybrid/budget_overflow", hybrid_case("hybrid/budget_overflow", tokens_for(64, vary=False), 2,
                                               2, 128, skew=4.0, pad=8, budget_mode="tight")),
        ("hybrid/fp8", hybrid_case("hybrid/fp8", tokens_for(40), 4, 3, 384, pad=16, fp8=True)),
        ("hybrid/fp8_pow2_odd_hidden", hybrid_case("hybrid/fp8_pow2_odd_hidden", tokens_for(29), 2, 2,
                                                   333, masked=0.2, fp8=True, pow2=True)),
        ("hybrid/fp8_budget_overflow", hybrid_case("hybrid/fp8_budget_overflow", tokens_for(48), 2, 2,
                                                   256, skew=4.0, pad=16, budget_mode="tight",
                                                   fp8=True)),
        ("hybrid/megatron_round_trip_pad16", hybrid_round_trip("hybrid/megatron_round_trip_pad16",
                                                               tokens_for(44), 4, 4, 256, 0.2, 16)),
        ("ncclep/ample", ncclep_case("ncclep/ample", tokens_for(38), 4, 4, 256)),
        ("ncclep/align16_caller_buffers_masked", ncclep_case(
            "ncclep/align16_caller_buffers_masked", tokens_for(41, zero_rank=1), 2, 3, 192,
            alignment=16, caller_buffers=True, masked=0.3)),
        ("ncclep/tight_capacity_dropped", ncclep_case("ncclep/tight_capacity_dropped",
                                                      tokens_for(64, vary=False), 2, 2, 128,
                                                      alignment=8, capacity_mode="tight", skew=4.0)),
        ("buffer/stale_handle_after_growth", stale_handle_after_growth),
        ("buffer/non_blocking_over_capacity", non_blocking_over_capacity_is_a_clear_error),
        ("megatron/install", megatron_install_patches_imported_modules),
        ("moe/train_fused", moe_training("fused")),
        ("moe/train_hybrid_pad16", moe_training("hybrid", pad=16)),
        ("errors/bad_routing_reported_everywhere", bad_routing_is_reported_everywhere),
        ("ll/bf16_uneven_masked", ll_case("ll/bf16_uneven_masked", 30, 4, 4, 256, masked=0.2, zero_rank=1)),
        ("ll/top8_max_topk_odd_hidden", ll_case("ll/top8_max_topk_odd_hidden", 17, 8, 6, 333, max_topk=8)),
        ("ll/all_to_one_expert", ll_case("ll/all_to_one_expert", 40, 4, 2, 128, skew=1000.0)),
        ("ll/fp8", ll_case("ll/fp8", 26, 4, 4, 384, masked=0.1, fp8=1)),
        ("ll/fp8_pow2_odd_hidden", ll_case("ll/fp8_pow2_odd_hidden", 21, 2, 3, 333, fp8=2, zero_rank=0)),
        ("ll/hooks", ll_hooks),
        ("ll/graph_replay", ll_graph(split=False)),
        ("ll/graph_replay_split_halves", ll_graph(split=True)),
        ("ll/autograd", ll_autograd),
        ("ll/errors", ll_errors),
    ]
    return checks


def main():
    global GROUP, RANK, RANKS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], help="run checks whose name contains this")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args()
    RANK = int(os.environ.get("RANK", "0"))
    RANKS = int(os.environ.get("WORLD_SIZE", "1"))
    if args.list:
        for name, _ in all_checks():
            print(name)
        return 0
    device = int(os.environ.get("LOCAL_RANK", "0")) % max(1, torch.cuda.device_count())
    torch.cuda.set_device(device)
    dist.init_process_group("nccl", rank=RANK, world_size=RANKS, device_id=torch.device("cuda", device),
                            timeout=datetime.timedelta(seconds=300))
    GROUP = dist.group.WORLD
    lib = nccl_moe.load_library()
    if RANK == 0:
        print("nccl_moe %s, library %s (%s), torch %s, %d ranks" % (
            nccl_moe.__version__, lib.version_string(), lib.path, torch.__version__, RANKS), flush=True)
    failures = []
    for name, check in all_checks():
        if args.only and not any(s in name for s in args.only):
            continue
        start = time.time()
        try:
            detail = check() or ""
            ok = True
        except Exception:
            detail = traceback.format_exc()
            ok = False
        try:
            torch.cuda.synchronize()
        except Exception:
            detail += traceback.format_exc()
            ok = False
        flag = torch.tensor([1 if ok else 0], dtype=torch.int32, device="cuda")
        dist.all_reduce(flag, op=dist.ReduceOp.MIN, group=GROUP)
        everywhere = bool(flag.item())
        status = "PASS" if ok else "FAIL"
        if ok and not everywhere:
            status = "PASS (failed on another rank)"
        print("[rank %d/%d] %s %s (%.1fs) %s" % (RANK, RANKS, status, name, time.time() - start,
                                                detail.strip()), flush=True)
        if not everywhere:
            failures.append(name)
    fa.reset_hybrid_ep_buffer()
    fa.reset_buffer()
    torch.cuda.synchronize()
    dist.barrier()
    if RANK == 0:
        print("RESULT %s: %d ranks, %s" % ("FAIL" if failures else "PASS", RANKS,
                                           ", ".join(failures) if failures else "all checks passed"),
              flush=True)
    dist.destroy_process_group()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
