"""Pure-PyTorch reference of the low-latency (LL) mode for the GPU tests (docs/low_latency.md),
independent of libnccl_moe: all_gather / all_to_all and index operations.

Bit-exact where the contract is: dispatch rows are copies (FP8: the same quantisation as
reference.quantize_rows), placed per local expert by (source rank, source token); combine is, per
token, the fp32 fmaf chain over the kept slots in slot order, rounded once to bf16. fmaf(w, y, acc)
is emulated in float64: w * y is exact there (24 x 8 significant bits), and the sum is rounded
once to fp32 unless float64 had to round it first, which needs an exponent gap of ~20 bits between
acc and w * y and then a tie at fp32 precision (probability ~2^-29 of those rare sums). With
w = 1 it is an fp32 addition, exact.
"""
from dataclasses import dataclass
from typing import List

import torch
import torch.distributed as dist

import reference as ref

BF16 = torch.bfloat16


def gather_padded(tensor, rows, fill, group):
    """Every rank's ``tensor`` ([T_s, ...], T_s <= rows) as a list, through one padded all_gather."""
    padded = torch.full((rows,) + tuple(tensor.shape[1:]), fill, dtype=tensor.dtype, device="cuda")
    padded[:tensor.shape[0]] = tensor
    count = torch.tensor([tensor.shape[0]], dtype=torch.int64, device="cuda")
    counts = [torch.empty_like(count) for _ in range(group.size())]
    dist.all_gather(counts, count, group=group)
    every = [torch.empty_like(padded) for _ in range(group.size())]
    dist.all_gather(every, padded, group=group)  # moves bytes: bf16 rows arrive bit for bit
    return [t[:int(c.item())] for t, c in zip(every, counts)]


@dataclass
class Layout:
    """What the dispatch must deliver on this rank, per local expert l."""
    counts: List[int]
    src: List[torch.Tensor]     # [count_l, 3] int32: source rank, token, slot
    rows: List[torch.Tensor]    # [count_l, H] bf16, or FP8 codes
    scales: List[torch.Tensor]  # FP8: [count_l, B] fp32; else None entries


def dispatch_expected(xs, ids, rank, local, fp8=0):
    """This rank's dispatch outputs from every rank's x and ids (lists over the ranks)."""
    counts, srcs, rows, scales = [], [], [], []
    for l in range(local):
        expert = rank * local + l
        src_parts, row_parts, scale_parts = [], [], []
        for s, (x, idx) in enumerate(zip(xs, ids)):
            tokens, slots = (idx == expert).nonzero(as_tuple=True)  # row-major: ascending token
            src_parts.append(torch.stack((torch.full_like(tokens, s), tokens, slots), dim=1).to(torch.int32))
            picked = x[tokens]
            if fp8:
                if picked.shape[0]:
                    q, sc = ref.quantize_rows(picked, power_of_two=fp8 == 2)
                else:
                    q = torch.zeros((0, x.shape[1]), dtype=ref.FP8, device="cuda")
                    sc = torch.zeros((0, -(-x.shape[1] // 128)), dtype=torch.float32, device="cuda")
                row_parts.append(q)
                scale_parts.append(sc)
            else:
                row_parts.append(picked)
        src = torch.cat(src_parts)
        counts.append(src.shape[0])
        srcs.append(src)
        rows.append(torch.cat(row_parts))
        scales.append(torch.cat(scale_parts) if fp8 else None)
    return Layout(counts, srcs, rows, scales)


def rows_to_sources(y, layout, group):
    """The expert outputs y [L, P, H] of this rank's rows, sent back to their source ranks: per
    source, a list of (token, slot) [n, 2] and rows [n, H]."""
    ranks = group.size()
    parts = [[] for _ in range(ranks)]
    for l, src in enumerate(layout.src):
        for s in range(ranks):
            mine = (src[:, 0] == s).nonzero().flatten()
            parts[s].append((src[mine][:, 1:], y[l, mine]))
    keys = [torch.cat([k for k, _ in p]) if p else torch.zeros((0, 2), dtype=torch.int32, device="cuda")
            for p in parts]
    vals = [torch.cat([v for _, v in p]) for p in parts]
    send_counts = [k.shape[0] for k in keys]
    recv_counts = ref.exchange_counts(send_counts, group)
    back_keys = ref.all_to_all_rows(keys, group, recv_counts)
    back_vals = ref.all_to_all_rows(vals, group, recv_counts)
    return torch.cat(back_keys), torch.cat(back_vals)


def expert_rows_at_source(y, layout, group, tokens, topk):
    """[T, K, H] fp32: y(e_k, t) of this rank's tokens (zeros in masked slots)."""
    keys, vals = rows_to_sources(y, layout, group)
    out = torch.zeros((tokens, topk, y.shape[2]), dtype=torch.float32, device="cuda")
    if keys.shape[0]:
        out[keys[:, 0].long(), keys[:, 1].long()] = vals.float()
    return out


def _slot_chain(per_slot, idx, weights, keep):
    """fp32 [T, H]: the fmaf chain in slot order over the slots ``keep`` [T, K] selects."""
    tokens, topk, hidden = per_slot.shape
    acc = torch.zeros((tokens, hidden), dtype=torch.float32, device=per_slot.device)
    for k in range(topk):
        if weights is None:
            step = acc + per_slot[:, k]
        else:
            step = (acc.double() + weights[:, k:k + 1].double() * per_slot[:, k].double()).float()
        acc = torch.where(keep[:, k].unsqueeze(1), step, acc)
    return acc


def combine_expected(per_slot, idx, weights=None, experts_per_domain=None):
    """out [T, H] bf16 from y(e_k, t) per slot [T, K, H] fp32: one domain, the fmaf chain in slot
    order; with several domains (``experts_per_domain`` experts each), docs/low_latency.md 5.3: per
    domain of the token's valid slots the chain over its slots rounded to bf16 (the node partial),
    the partials added in fp32 in ascending domain order, the sum rounded to bf16."""
    valid = idx >= 0
    if experts_per_domain is None:
        return _slot_chain(per_slot, idx, weights, valid).to(BF16)
    domain_of = torch.div(idx.clamp(min=0), experts_per_domain, rounding_mode="floor")
    domains = int(domain_of.max().item()) + 1 if idx.numel() else 0
    tokens, _, hidden = per_slot.shape
    total = torch.zeros((tokens, hidden), dtype=torch.float32, device=per_slot.device)
    started = torch.zeros((tokens, 1), dtype=torch.bool, device=per_slot.device)
    for m in range(domains):
        keep = valid & (domain_of == m)
        has = keep.any(dim=1, keepdim=True)
        partial = _slot_chain(per_slot, idx, weights, keep).to(BF16).float()
        # S = p_first, then S + p_m: the first partial is taken as it is (a -0.0 stays -0.0).
        total = torch.where(has, torch.where(started, total + partial, partial), total)
        started = started | has
    return total.to(BF16)


def weighted_rows_expected(layout, grads, weights, hidden):
    """The combine's backward with respect to y on this rank: row (s, t, k) = bf16(fp32(w * g))."""
    out = []
    for src in layout.src:
        if src.shape[0] == 0:
            out.append(torch.zeros((0, hidden), dtype=BF16, device="cuda"))
            continue
        g = torch.stack([grads[s][t] for s, t in src[:, :2].tolist()])
        w = torch.tensor([float(weights[s][t, k]) for s, t, k in src.tolist()], dtype=torch.float32,
                         device="cuda")
        out.append((g.float() * w.unsqueeze(1)).to(BF16))
    return out
