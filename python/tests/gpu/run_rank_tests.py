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

import reference as ref  # noqa: E402
import nccl_moe  # noqa: E402
from nccl_moe import fused_a2a as fa  # noqa: E402

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
    generation = old.generation
    big = before + 1 if RANK == 0 else 4  # only rank 0 needs more: every rank must still grow
    x2 = torch.randn((big, hidden), generator=gen, device="cuda").to(BF16)
    idx2, probs2 = make_topk(big, experts, 2, gen)
    recv2, _, _, _, new = fa.fused_dispatch(x2, idx2, probs2, experts, GROUP)
    y2, _ = fa.fused_combine(recv2, GROUP, new)
    assert fa._buffer.sizing.max_tokens >= before + 1, "buffer did not grow"
    assert new.generation != generation, "generation did not change"
    try:
        fa.fused_combine(recv_x, GROUP, old)
    except nccl_moe.StaleHandleError as error:
        message = str(error)
    else:
        raise AssertionError("a handle from before the growth was accepted")
    assert "stale" in message, message
    torch.cuda.synchronize()
    return "grew %d -> %d tokens; error: %s" % (before, fa._buffer.sizing.max_tokens, message[:90])


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
