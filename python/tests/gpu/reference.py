"""Pure-PyTorch reference of the nccl_moe dispatch/combine semantics, for the GPU tests.

Built only from ``torch.distributed.all_to_all_single`` and index operations, independent of
libnccl_moe. It reproduces the library's receive order (source rank, then source token; expert
segments for the expert-major layout, padded and cut by the budget) and its combine order (per
destination rank the token's rows in row order, rounded to the row type, then those partials in
rank order), so the library's results should match it bit for bit; the tests still compare with a
bf16 tolerance and report bit-exactness separately.
"""
from dataclasses import dataclass
from typing import List

import torch
import torch.distributed as dist

FP8 = torch.float8_e4m3fn
FP8_MAX = 448.0


# ---- exchange helpers -----------------------------------------------------------------------

def exchange_counts(send_counts, group):
    send = torch.tensor(send_counts, dtype=torch.int64, device="cuda")
    recv = torch.empty_like(send)
    dist.all_to_all_single(recv, send, group=group)
    return recv.tolist()


def all_to_all_rows(chunks, group, recv_counts):
    """chunks[d] goes to rank d; returns the list of chunks received from each rank."""
    send_counts = [c.shape[0] for c in chunks]
    send = torch.cat(chunks).contiguous()
    recv = torch.empty((sum(recv_counts),) + tuple(send.shape[1:]), dtype=send.dtype, device="cuda")
    dist.all_to_all_single(recv, send, output_split_sizes=recv_counts,
                           input_split_sizes=send_counts, group=group)
    return list(recv.split(recv_counts))


# ---- FP8 ------------------------------------------------------------------------------------

def quantize_rows(x, power_of_two=False):
    """E4M3 with one fp32 scale per 128 channels: scale = max(amax, 1e-4) / 448.

    Both divisions are true fp32 divisions, as in the library (core/numerics.h). Note that
    ``tensor / 448.0`` is NOT: PyTorch's CUDA kernel turns a division by a CPU scalar into a
    multiplication by its reciprocal (fp32(1/448)), which is off by one ulp for some amax values,
    and then about 0.1% of the E4M3 codes land on the other side of a rounding boundary. Dividing
    by a CUDA tensor of 448s keeps the correctly rounded division. The quotient is clamped to
    +-448 before torch's cast (which gives NaN above the E4M3 range instead of saturating); with
    the clamp, the cast's round-to-nearest-even matches the library's satfinite conversion.
    """
    rows, hidden = x.shape
    blocks = -(-hidden // 128)
    padded = torch.zeros((rows, blocks * 128), dtype=torch.float32, device=x.device)
    padded[:, :hidden] = x.float()
    view = padded.view(rows, blocks, 128)
    amax = torch.clamp(view.abs().amax(dim=2), min=1e-4)
    scale = torch.div(amax, torch.full_like(amax, FP8_MAX))
    if power_of_two:
        bits = scale.view(torch.int32)
        scale = ((bits + 0x007FFFFF) & -0x00800000).view(torch.float32)
    q = (view / scale[:, :, None]).clamp(-FP8_MAX, FP8_MAX).view(rows, blocks * 128)[:, :hidden]
    return q.contiguous().to(FP8), scale


def dequantize_rows(q, scale, dtype):
    hidden = q.shape[1]
    return (q.float() * scale.repeat_interleave(128, dim=1)[:, :hidden]).to(dtype)


# ---- per-rank layout (FusedDispatch) --------------------------------------------------------

@dataclass
class PerRankPlan:
    tokens_by_dest: List[torch.Tensor]
    hit_by_dest: List[torch.Tensor]  # [n_d, K] bool: slot's expert lives on d
    send_counts: List[int]
    recv_counts: List[int]
    num_tokens: int
    topk: int


def per_rank_plan(topk_idx, num_experts, group):
    ranks = group.size()
    local = num_experts // ranks
    owner = torch.where(topk_idx >= 0, topk_idx // local, torch.full_like(topk_idx, -1))
    tokens, hits = [], []
    for d in range(ranks):
        hit = owner == d
        tok = hit.any(dim=1).nonzero().flatten()
        tokens.append(tok)
        hits.append(hit[tok])
    send_counts = [t.numel() for t in tokens]
    return PerRankPlan(tokens, hits, send_counts, exchange_counts(send_counts, group),
                       topk_idx.shape[0], topk_idx.shape[1])


def per_rank_dispatch(x, topk_idx, topk_probs, num_experts, group):
    """(recv_x, recv_idx (local ids), recv_probs, tokens_per_expert (CPU), plan)."""
    local = num_experts // group.size()
    plan = per_rank_plan(topk_idx, num_experts, group)
    xs, idxs, probs = [], [], []
    for d, (tok, hit) in enumerate(zip(plan.tokens_by_dest, plan.hit_by_dest)):
        xs.append(x[tok])
        idxs.append(torch.where(hit, topk_idx[tok] - d * local, torch.full_like(topk_idx[tok], -1)))
        probs.append(torch.where(hit, topk_probs[tok], torch.zeros_like(topk_probs[tok])))
    recv_x = torch.cat(all_to_all_rows(xs, group, plan.recv_counts))
    recv_idx = torch.cat(all_to_all_rows(idxs, group, plan.recv_counts))
    recv_probs = torch.cat(all_to_all_rows(probs, group, plan.recv_counts))
    tokens_per_expert = torch.tensor([int((recv_idx == j).sum()) for j in range(local)],
                                     dtype=torch.int64)
    return recv_x, recv_idx, recv_probs, tokens_per_expert, plan


def per_rank_rows_back(rows, plan, group):
    return all_to_all_rows(list(rows.split(plan.recv_counts)), group, plan.send_counts)


def per_rank_combine(rows, plan, group, dtype):
    back = per_rank_rows_back(rows.to(dtype), plan, group)
    acc = torch.zeros((plan.num_tokens, rows.shape[1]), dtype=torch.float32, device="cuda")
    for tok, part in zip(plan.tokens_by_dest, back):
        acc[tok] += part.float()
    return acc.to(dtype)


def per_rank_combine_probs(probs_grad, plan, group):
    back = per_rank_rows_back(probs_grad.float(), plan, group)
    out = torch.zeros((plan.num_tokens, plan.topk), dtype=torch.float32, device="cuda")
    for tok, hit, part in zip(plan.tokens_by_dest, plan.hit_by_dest, back):
        out[tok] = torch.where(hit, part, out[tok])
    return out


def per_rank_cached_dispatch(grad, plan, group):
    return torch.cat(all_to_all_rows([grad[t] for t in plan.tokens_by_dest], group, plan.recv_counts))


# ---- expert-major layout (HybridEPDispatch) ---------------------------------------------------

@dataclass
class ExpertMajorPlan:
    tokens_by_dest: List[torch.Tensor]
    send_counts: List[int]
    recv_counts: List[int]
    segments: list  # per local expert: (positions in the output, received-row indices)
    received: int  # N: received (token, rank) rows
    rows_allocated: int
    rows_used: int
    tokens_per_expert: List[int]
    overflow: bool
    num_tokens: int
    local: int


def expert_major_dispatch(x, routing_map, probs, group, pad_multiple=None, budget=None, fp8=False,
                          power_of_two=False):
    """(hidden, out_probs, scales, plan). hidden is [rows_allocated, H]; rows past rows_used are
    zero here (the library leaves them unwritten: compare only the used part)."""
    ranks = group.size()
    num_experts = routing_map.shape[1]
    local = num_experts // ranks
    pad = max(1, int(pad_multiple or 1))
    tokens, xs, maps, ps = [], [], [], []
    for d in range(ranks):
        slab = routing_map[:, d * local:(d + 1) * local]
        tok = slab.any(dim=1).nonzero().flatten()
        tokens.append(tok)
        xs.append(x[tok])
        maps.append(slab[tok].to(torch.uint8))
        ps.append(probs[tok, d * local:(d + 1) * local].float())
    send_counts = [t.numel() for t in tokens]
    recv_counts = exchange_counts(send_counts, group)
    rx = torch.cat(all_to_all_rows(xs, group, recv_counts))
    rmap = torch.cat(all_to_all_rows(maps, group, recv_counts)).bool()
    rp = torch.cat(all_to_all_rows(ps, group, recv_counts))
    segments, kept_counts, start = [], [], 0
    for j in range(local):
        rows = rmap[:, j].nonzero().flatten()
        pairs = rows.numel()
        padded = -(-pairs // pad) * pad
        kept = padded if budget is None else min(max(budget - start, 0), padded)
        real = min(pairs, kept)
        segments.append((torch.arange(start, start + real, device="cuda"), rows[:real], j))
        kept_counts.append(kept)
        start += padded
    used = sum(kept_counts)
    allocated = used if budget is None else budget
    hidden_size = x.shape[1]
    out_probs = torch.zeros(allocated, dtype=torch.float32, device="cuda")
    if fp8:
        q_rows, s_rows = quantize_rows(rx, power_of_two) if rx.shape[0] else (
            torch.zeros((0, hidden_size), dtype=FP8, device="cuda"),
            torch.zeros((0, -(-hidden_size // 128)), dtype=torch.float32, device="cuda"))
        hidden = torch.zeros((allocated, hidden_size), dtype=torch.uint8, device="cuda").view(FP8)
        scales = torch.zeros((allocated, -(-hidden_size // 128)), dtype=torch.float32, device="cuda")
    else:
        hidden = torch.zeros((allocated, hidden_size), dtype=x.dtype, device="cuda")
        scales = None
    for pos, rows, j in segments:
        if fp8:
            hidden.view(torch.uint8)[pos] = q_rows.view(torch.uint8)[rows]
            scales[pos] = s_rows[rows]
        else:
            hidden[pos] = rx[rows]
        out_probs[pos] = rp[rows, j]
    plan = ExpertMajorPlan(tokens, send_counts, recv_counts, segments, rx.shape[0], allocated, used,
                           kept_counts, budget is not None and start > budget, x.shape[0], local)
    return hidden, out_probs, scales, plan


def expert_major_combine(y, plan, group, dtype):
    acc = torch.zeros((plan.received, y.shape[1]), dtype=torch.float32, device="cuda")
    for pos, rows, _ in plan.segments:
        acc[rows] += y[pos].float()
    back = all_to_all_rows(list(acc.to(dtype).split(plan.recv_counts)), group, plan.send_counts)
    out = torch.zeros((plan.num_tokens, y.shape[1]), dtype=torch.float32, device="cuda")
    for tok, part in zip(plan.tokens_by_dest, back):
        out[tok] += part.float()
    return out.to(dtype)


def expert_major_combine_probs(probs_grad, plan, group, num_experts):
    grid = torch.zeros((plan.received, plan.local), dtype=torch.float32, device="cuda")
    for pos, rows, j in plan.segments:
        grid[rows, j] = probs_grad[pos].float()
    back = all_to_all_rows(list(grid.split(plan.recv_counts)), group, plan.send_counts)
    out = torch.zeros((plan.num_tokens, num_experts), dtype=torch.float32, device="cuda")
    for d, (tok, part) in enumerate(zip(plan.tokens_by_dest, back)):
        out[tok, d * plan.local:(d + 1) * plan.local] = part
    return out


def expert_major_cached_dispatch(grad, plan, group, fp8=False, power_of_two=False):
    """Combine's backward: [rows_allocated, H] (unused rows zero); FP8 round trip when on."""
    rows_in = torch.cat(all_to_all_rows([grad[t] for t in plan.tokens_by_dest], group,
                                        plan.recv_counts))
    if fp8 and rows_in.shape[0]:
        q, s = quantize_rows(rows_in, power_of_two)
        rows_in = dequantize_rows(q, s, grad.dtype)
    out = torch.zeros((plan.rows_allocated, grad.shape[1]), dtype=grad.dtype, device="cuda")
    for pos, rows, _ in plan.segments:
        out[pos] = rows_in[rows]
    return out


# ---- autograd wrappers (the reference backend of the MoE-layer test) --------------------------

class RefFusedDispatch(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, topk_idx, topk_probs, num_experts, group):
        recv_x, recv_idx, recv_probs, tpe, plan = per_rank_dispatch(x, topk_idx, topk_probs,
                                                                    num_experts, group)
        ctx.plan, ctx.group, ctx.dtype = plan, group, x.dtype
        ctx.mark_non_differentiable(recv_idx, tpe)
        return recv_x, recv_idx, recv_probs, tpe, plan

    @staticmethod
    def backward(ctx, g_x, g_idx, g_probs, g_tpe, g_plan):
        return (per_rank_combine(g_x, ctx.plan, ctx.group, ctx.dtype), None,
                per_rank_combine_probs(g_probs, ctx.plan, ctx.group), None, None)


class RefFusedCombine(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y, group, plan):
        ctx.plan, ctx.group = plan, group
        return per_rank_combine(y, plan, group, y.dtype)

    @staticmethod
    def backward(ctx, g):
        return per_rank_cached_dispatch(g, ctx.plan, ctx.group), None, None


class RefHybridDispatch(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, routing_map, probs, group, pad_multiple, budget):
        hidden, out_probs, _, plan = expert_major_dispatch(x, routing_map, probs, group,
                                                           pad_multiple, budget)
        ctx.plan, ctx.group, ctx.dtype, ctx.experts = plan, group, x.dtype, routing_map.shape[1]
        tpe = torch.tensor(plan.tokens_per_expert, dtype=torch.int64)
        ctx.mark_non_differentiable(tpe)
        return hidden, out_probs, tpe, plan

    @staticmethod
    def backward(ctx, g_hidden, g_probs, g_tpe, g_plan):
        return (expert_major_combine(g_hidden, ctx.plan, ctx.group, ctx.dtype), None,
                expert_major_combine_probs(g_probs, ctx.plan, ctx.group, ctx.experts),
                None, None, None)


class RefHybridCombine(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y, group, plan):
        ctx.plan, ctx.group = plan, group
        return expert_major_combine(y, plan, group, y.dtype)

    @staticmethod
    def backward(ctx, g):
        return expert_major_cached_dispatch(g, ctx.plan, ctx.group), None, None
