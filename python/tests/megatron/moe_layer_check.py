#!/usr/bin/env python3
"""Megatron-Core's own MoELayer on nccl_moe, against the same layer on Megatron's all-to-all.

One rank of a group started by ``nccl-moe-run -np N --mps`` (any N >= 2); the Megatron-Core
release is whatever ``import megatron`` finds (the runner puts one released wheel on PYTHONPATH).
For every flex backend the release has (deepep, hybridep, ncclep) and every case below, it builds
two ``MoELayer``s with Megatron's local (non-TransformerEngine) expert spec from the same seed and
weights: the reference with ``moe_token_dispatcher_type="alltoall"``, the layer under test with
``"flex"`` and that backend, served by nccl_moe through ``nccl_moe.megatron.install()``. Both get
the same input and upstream gradient; the forward output, the input gradient, the router's weight
gradient and every expert weight gradient must agree, and in the training case the losses of a
few SGD steps and the final weights too.

``--order before``: install() runs before Megatron is imported (the documented way);
``--order after``: Megatron's modules (token_dispatcher included) are imported first, so install()
must replace the names they already took from Megatron's fused_a2a.

Tolerance (one formula for every tensor, nothing tuned): ``(2K + 4) * u * max|reference|`` with u
the unit roundoff of the parameters' dtype (2^-8 bf16, 2^-24 fp32) and K the top-k. Why: the
two paths move the same rows bit for bit (dispatch is a copy, checked bit-exact elsewhere) and
apply the same expert weights; they differ only in how a token's at most K weighted expert rows
are summed back (Megatron's unpermute and our combine round in a different order: at most K + 1
roundings on each side, and each partial sum of non-negative probs times rows is bounded by the
largest row) and, in the backward, in the same sum for the gradient rows, plus one final rounding
of each result on each side and fp32 accumulation-order differences in GEMMs over permuted rows,
which stay below one rounding of their bf16 result. That is at most 2(K + 1) + 2 roundings of a
value bounded by the tensor's largest magnitude. The losses of the training case are compared
with the same formula times the step count (each step adds at most one tolerance of drift).

Megatron-Core 0.15/0.16 without TransformerEngine leave ``te_general_gemm`` and the other fused
MoE helpers undefined (a NameError in the router for every dispatcher, all-to-all included);
0.17+ set them to None. This script sets them to None on 0.15/0.16: Megatron's gap, not ours.

Output: one line per (backend, case) and rank 0 writes ``--json`` (a list of result records).
Exit status 1 if any case failed on any rank.
"""
import argparse
import dataclasses
import json
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", ".."))  # python/: nccl_moe from this checkout


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--order", choices=("before", "after"), default="before",
                        help="install() before or after Megatron's modules are imported")
    parser.add_argument("--json", help="rank 0 writes the result records here")
    parser.add_argument("--only", default="", help="comma-separated case names (default: all)")
    parser.add_argument("--backends", default="", help="comma-separated backends (default: all "
                        "the release has)")
    return parser.parse_args()


ARGS = parse_args()

if ARGS.order == "before":
    import nccl_moe.megatron as nccl_moe_megatron

    REPLACED = nccl_moe_megatron.install()

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

from megatron.core import parallel_state, tensor_parallel  # noqa: E402
from megatron.core.models.gpt.gpt_layer_specs import get_gpt_layer_local_spec  # noqa: E402
from megatron.core.transformer.moe import moe_utils, token_dispatcher  # noqa: E402
from megatron.core.transformer.moe.moe_layer import MoELayer  # noqa: E402
from megatron.core.transformer.transformer_config import TransformerConfig  # noqa: E402

from nccl_moe import megatron_compat  # noqa: E402

if ARGS.order == "after":
    import nccl_moe.megatron as nccl_moe_megatron

    REPLACED = nccl_moe_megatron.install()

import nccl_moe.fused_a2a as ours  # noqa: E402

for _name in ("fused_compute_score_for_moe_aux_loss", "fused_moe_aux_loss", "fused_permute",
              "fused_permute_and_pad_with_probs", "fused_permute_with_probs",
              "fused_sort_chunks_by_index", "fused_sort_chunks_by_index_with_probs",
              "fused_topk_with_score_function", "fused_unpermute", "te_general_gemm"):
    if not hasattr(moe_utils, _name):  # Megatron 0.15/0.16 without TransformerEngine
        setattr(moe_utils, _name, None)

RELEASE = megatron_compat.release_of(os.path.dirname(os.path.dirname(parallel_state.__file__)))
MAJOR_MINOR = RELEASE[:2]
VERSION = RELEASE[2]
BACKENDS = megatron_compat.SUPPORTED[MAJOR_MINOR]
UNIT_ROUNDOFF = {torch.bfloat16: 2.0 ** -8, torch.float32: 2.0 ** -24}


@dataclasses.dataclass
class Case:
    name: str
    topk: int
    experts: int = 16
    hidden: int = 256
    ffn: int = 128
    dtype: object = torch.bfloat16
    capacity: float = None  # token dropping (moe_expert_capacity_factor)
    pad_to_capacity: bool = False  # drop-and-pad: HybridEP's non-blocking mode
    steps: int = 0  # > 0: a short training run
    backends: tuple = ("deepep", "hybridep", "ncclep")
    # Token counts differ between ranks. Megatron's drop-and-pad needs equal counts (every rank
    # sizes the expert segments as capacity x ranks from its own count), for alltoall as for
    # HybridEP, so that case keeps them equal.
    uneven: bool = True


CASES = [
    Case("top2", topk=2),
    Case("top8_hidden200", topk=8, hidden=200),
    Case("top4_fp32", topk=4, dtype=torch.float32),
    Case("top4_drop", topk=4, capacity=1.0),
    Case("top4_drop_and_pad", topk=4, capacity=1.0, pad_to_capacity=True, backends=("hybridep",),
         uneven=False),
    Case("top6_train3", topk=6, steps=3),
]


def config_fields():
    return {f.name for f in dataclasses.fields(TransformerConfig)}


def make_config(case, dispatcher, backend=None):
    fields = config_fields()
    world = dist.get_world_size()
    wanted = dict(
        num_layers=1, hidden_size=case.hidden, num_attention_heads=4, ffn_hidden_size=case.ffn,
        moe_ffn_hidden_size=case.ffn, num_moe_experts=case.experts, moe_router_topk=case.topk,
        moe_router_load_balancing_type="none", moe_aux_loss_coeff=0.0, moe_router_dtype="fp32",
        moe_token_dispatcher_type=dispatcher, moe_grouped_gemm=False, add_bias_linear=False,
        bf16=case.dtype == torch.bfloat16, params_dtype=case.dtype, use_cpu_initialization=True,
        gradient_accumulation_fusion=False, sequence_parallel=False, moe_permute_fusion=False,
        tensor_model_parallel_size=1, expert_model_parallel_size=world,
        moe_expert_capacity_factor=case.capacity,
        moe_pad_expert_input_to_capacity=case.pad_to_capacity)
    if dispatcher == "flex":
        if "moe_flex_dispatcher_backend" in fields:
            wanted["moe_flex_dispatcher_backend"] = backend
        else:  # 0.15: DeepEP is the only flex backend
            wanted["moe_enable_deepep"] = True
        if backend == "ncclep":  # sizes the receive capacity; generous, nothing may be dropped
            wanted["moe_expert_rank_capacity_factor"] = 4.0
    return TransformerConfig(**{k: v for k, v in wanted.items() if k in fields})


def build_layer(config, case):
    mlp = get_gpt_layer_local_spec(num_experts=case.experts, moe_grouped_gemm=False).submodules.mlp
    # 0.15-0.17: a ModuleSpec of MoELayer; 0.18+: functools.partial(MoELayer, submodules=...).
    submodules = mlp.keywords["submodules"] if hasattr(mlp, "keywords") else mlp.submodules
    tensor_parallel.model_parallel_cuda_manual_seed(1234)
    torch.manual_seed(1234)
    return MoELayer(config, submodules).cuda()


def tokens_on(rank, case):
    return 40 + (17 * rank if case.uneven else 0) + (case.topk % 3)


def run_layer(layer, x, grad):
    x = x.detach().clone().requires_grad_(True)
    output = layer(x)
    output = output[0] if isinstance(output, tuple) else output
    output.backward(grad)
    grads = {"input": x.grad}
    for name, param in layer.named_parameters():
        if param.grad is not None:
            grads[name] = param.grad
    return output.detach(), grads


def compare(name, got, want, topk, dtype, scale_steps=1):
    """Max error and its tolerance (see the module docstring); raises on a mismatch."""
    if got is None or want is None or got.shape != want.shape:
        raise AssertionError("%s: shape %s vs reference %s" % (
            name, None if got is None else tuple(got.shape), None if want is None else tuple(want.shape)))
    got, want = got.float(), want.float()
    if not torch.isfinite(got).all():
        raise AssertionError("%s: non-finite values" % name)
    error = (got - want).abs().max().item() if got.numel() else 0.0
    scale = want.abs().max().item() if want.numel() else 0.0
    tolerance = (2 * topk + 4) * UNIT_ROUNDOFF[dtype] * scale * scale_steps
    if error > tolerance:
        raise AssertionError("%s: max error %.3g > tolerance %.3g (max |reference| %.3g)"
                             % (name, error, tolerance, scale))
    return error, tolerance


def check_forward_backward(case, backend):
    rank = dist.get_rank()
    reference = build_layer(make_config(case, "alltoall"), case)
    tested = build_layer(make_config(case, "flex", backend), case)
    tested.load_state_dict(reference.state_dict())
    gen = torch.Generator(device="cuda").manual_seed(99 + rank)
    x = torch.randn(tokens_on(rank, case), 1, case.hidden, device="cuda", dtype=case.dtype,
                    generator=gen)
    grad = torch.randn(x.shape, device="cuda", dtype=case.dtype, generator=gen)
    want_out, want_grads = run_layer(reference, x, grad)
    got_out, got_grads = run_layer(tested, x, grad)
    worst = compare("output", got_out, want_out, case.topk, case.dtype)
    names = sorted(set(want_grads) | set(got_grads))
    expert_grads = [n for n in names if "experts" in n]
    if not expert_grads or "router.weight" not in names:
        raise AssertionError("expected router and expert gradients, got %s" % names)
    for name in names:
        result = compare("grad " + name, got_grads.get(name), want_grads.get(name), case.topk,
                         case.dtype)
        worst = max(worst, result, key=lambda r: r[0] / r[1] if r[1] else r[0])
    return worst, "%d grads" % len(names)


def check_training(case, backend):
    rank = dist.get_rank()
    reference = build_layer(make_config(case, "alltoall"), case)
    tested = build_layer(make_config(case, "flex", backend), case)
    tested.load_state_dict(reference.state_dict())
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.5) for m in (reference, tested)]
    gen = torch.Generator(device="cuda").manual_seed(7 + rank)
    worst = (0.0, 1.0)
    losses = []
    for step in range(1, case.steps + 1):
        x = torch.randn(tokens_on(rank, case) + step, 1, case.hidden, device="cuda",
                        dtype=case.dtype, generator=gen)
        step_losses = []
        for model, optimizer in zip((reference, tested), optimizers):
            optimizer.zero_grad()
            output = model(x)
            output = output[0] if isinstance(output, tuple) else output
            loss = 0.5 * output.float().pow(2).mean()
            loss.backward()
            optimizer.step()
            step_losses.append(loss.detach())
        result = compare("loss step %d" % step, step_losses[1], step_losses[0], case.topk,
                         case.dtype, scale_steps=step)
        worst = max(worst, result, key=lambda r: r[0] / r[1] if r[1] else r[0])
        losses.append(float(step_losses[0]))
    tested_state = tested.state_dict()
    for name, want in reference.state_dict().items():
        if torch.is_tensor(want) and want.is_floating_point():
            result = compare("weights after training: " + name, tested_state.get(name), want,
                             case.topk, case.dtype, scale_steps=case.steps)
            worst = max(worst, result, key=lambda r: r[0] / r[1] if r[1] else r[0])
    return worst, "losses %s" % ", ".join("%.4f" % v for v in losses)


def reset_backends():
    """A fresh model each case: Megatron would size the buffers once per model too."""
    ours.reset_buffer()
    ours.reset_hybrid_ep_buffer()
    ours.nccl_ep_finalize()


def run_case(case, backend):
    started = time.time()
    record = dict(release=VERSION, order=ARGS.order, ranks=dist.get_world_size(), backend=backend,
                  case=case.name, topk=case.topk, dtype=str(case.dtype).replace("torch.", ""))
    try:
        check = check_training if case.steps else check_forward_backward
        (error, tolerance), detail = check(case, backend)
        record.update(ok=True, max_error=error, tolerance=tolerance, detail=detail)
    except Exception as error:  # noqa: BLE001 - every failure is reported, the run goes on
        record.update(ok=False, detail="%s: %s" % (type(error).__name__, error),
                      trace=traceback.format_exc(limit=6))
    finally:
        try:
            reset_backends()
        except Exception as error:  # noqa: BLE001
            record.update(ok=False, detail=record.get("detail", "") + "; reset: %s" % error)
    record["seconds"] = round(time.time() - started, 2)
    return record


def main():
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    torch.cuda.set_device(local_rank % torch.cuda.device_count())
    dist.init_process_group("nccl", device_id=torch.device("cuda", torch.cuda.current_device()))
    parallel_state.initialize_model_parallel(tensor_model_parallel_size=1,
                                             expert_model_parallel_size=dist.get_world_size())
    rank = dist.get_rank()
    if token_dispatcher.__dict__.get("fused_dispatch") is not ours.fused_dispatch:
        raise SystemExit("install() did not reach token_dispatcher (order %s)" % ARGS.order)
    backends = [b for b in BACKENDS if not ARGS.backends or b in ARGS.backends.split(",")]
    only = set(filter(None, ARGS.only.split(",")))
    records = []
    for backend in backends:
        for case in CASES:
            if backend not in case.backends or (only and case.name not in only):
                continue
            record = run_case(case, backend)
            status = "PASS" if record["ok"] else "FAIL"
            print("[%s] megatron %s %s %s/%s: %s" % (status, VERSION, ARGS.order, backend, case.name,
                                                  record["detail"]), flush=True)
            if not record["ok"] and rank == 0:
                print(record.get("trace", ""), flush=True)
            records.append(record)
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, records)
    merged = []
    for i, record in enumerate(records):  # a case passes only if it passed on every rank
        per_rank = [r[i] for r in gathered]
        ok = all(r["ok"] for r in per_rank)
        ratio = max((r["max_error"] / r["tolerance"]) if r.get("tolerance") else 0.0
                    for r in per_rank if r["ok"]) if ok else None
        merged.append(dict(record, ok=ok, error_over_tolerance=ratio,
                           max_error=max((r.get("max_error") or 0.0) for r in per_rank),
                           failed_ranks=[k for k, r in enumerate(per_rank) if not r["ok"]],
                           detail=next((r["detail"] for r in per_rank if not r["ok"]),
                                       record["detail"]),
                           replaced=len(REPLACED)))
    if rank == 0 and ARGS.json:
        with open(ARGS.json, "w") as handle:
            json.dump(merged, handle, indent=1)
    failed = [m for m in merged if not m["ok"]]
    if rank == 0:
        print("megatron %s order=%s ranks=%d: %d/%d cases passed"
              % (VERSION, ARGS.order, dist.get_world_size(), len(merged) - len(failed), len(merged)),
              flush=True)
    parallel_state.destroy_model_parallel()
    dist.destroy_process_group()
    return 1 if failed or not merged else 0


if __name__ == "__main__":
    sys.exit(main())
