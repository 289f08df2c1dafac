"""Pure arithmetic of buffer sizing and output shapes (no PyTorch, no library).

The MoE communicator fixes its sizes at creation (experts, hidden size, the largest T and K, row
type, FP8). The Python layer sizes it from the calls it sees and grows it when a call needs more;
growing is collective, so every rank must take the same decision. This module holds those
decisions as plain functions over integers, so they can be tested without a GPU:

* ``Requirements`` is what one call needs; ``encode_for_max_reduce`` / ``decode_max_reduced`` turn
  it into one integer vector whose element-wise MAX over the ranks gives the largest T and K and
  detects ranks that disagree on values that must be equal (hidden size, experts, row type, FP8);
* ``CommSizing.covers`` / ``plan_sizing`` say whether the live communicator serves a call and what
  a new one must hold;
* ``encode_sizing_for_max_reduce`` / ``decode_sizing_max_reduced`` make the planned sizing itself
  identical on every rank before a communicator is created. The library lays out its peer-visible
  buffer from ``maxTokensPerRank``, ``maxTopk``, the hidden size, row type and FP8 settings, and
  peers write at offsets computed from their own configuration: a rank whose configuration differs
  (e.g. sized from a per-rank ``seq_len`` hint) silently receives rows at the wrong offsets.
"""
from dataclasses import dataclass, replace
from typing import Optional

from . import structs

TOKEN_GRANULARITY = 64  # T is rounded up to this when sizing, so small variations don't regrow
ROW_TYPES = {"bfloat16": structs.NCCL_BFLOAT16, "float32": structs.NCCL_FLOAT32}


def ceil_div(a, b):
    return -(-int(a) // int(b))


def round_up(value, multiple):
    multiple = max(1, int(multiple))
    return ceil_div(value, multiple) * multiple


def fp8_scale_blocks(hidden):
    """FP8 scales per token row: one per 128 channels, the last block possibly shorter."""
    return ceil_div(hidden, structs.FP8_BLOCK_CHANNELS)


def local_expert_count(num_experts, ranks):
    """L = E / R, with the error the library would give, but before any communication."""
    if ranks <= 0 or num_experts <= 0 or num_experts % ranks != 0:
        raise ValueError("num_experts=%d must be a positive multiple of the group size %d"
                         % (num_experts, ranks))
    return num_experts // ranks


def effective_pad(pad_multiple):
    """None/0/1 all mean "no padding"."""
    if pad_multiple is None:
        return 1
    pad = int(pad_multiple)
    if pad < 0:
        raise ValueError("pad_multiple=%d must not be negative" % pad)
    return max(1, pad)


def check_row_budget(num_permuted_tokens, pad_multiple):
    """The budget of non-blocking mode as an int, checked like the library checks it."""
    budget = int(num_permuted_tokens)
    pad = effective_pad(pad_multiple)
    if budget < 0:
        raise ValueError("num_permuted_tokens=%d must not be negative" % budget)
    if budget % pad != 0:
        raise ValueError("num_permuted_tokens=%d must be a multiple of pad_multiple=%d"
                         % (budget, pad))
    return budget


def expert_major_rows(pairs_per_expert, pad_multiple, budget=None):
    """Rows of an expert-major output: (padded counts kept per expert, rows used, overflow).

    Each local expert's segment is padded to ``pad_multiple``; with a budget the padded layout is
    cut after ``budget`` rows (the reference semantics of the library).
    """
    pad = effective_pad(pad_multiple)
    kept, start = [], 0
    for pairs in pairs_per_expert:
        padded = round_up(pairs, pad)
        kept.append(padded if budget is None else min(max(budget - start, 0), padded))
        start += padded
    overflow = budget is not None and start > budget
    return kept, sum(kept), overflow


@dataclass(frozen=True)
class Requirements:
    """What one call needs from the communicator (per rank before agreement)."""

    tokens: int
    topk: int
    hidden: int
    experts: int
    row_type: int
    fp8: bool = False
    same_topk: int = 0  # top-k format: K, which the library needs equal on every rank; map: 0


_EQUAL_FIELDS = ("hidden", "experts", "row_type", "fp8", "same_topk")


def encode_for_max_reduce(req):
    """[T, K, then v and -v for every field that must be equal]: MAX over ranks gives both the
    largest T and K and the max and min of each must-be-equal field."""
    vector = [int(req.tokens), int(req.topk)]
    for name in _EQUAL_FIELDS:
        value = int(getattr(req, name))
        vector += [value, -value]
    return vector


def decode_max_reduced(vector):
    """Requirements agreed by all ranks; ValueError naming the field the ranks disagree on."""
    vector = [int(v) for v in vector]
    if len(vector) != 2 + 2 * len(_EQUAL_FIELDS):
        raise ValueError("agreement vector has %d entries" % len(vector))
    agreed = {"tokens": vector[0], "topk": vector[1]}
    for i, name in enumerate(_EQUAL_FIELDS):
        largest, smallest = vector[2 + 2 * i], -vector[3 + 2 * i]
        if largest != smallest:
            raise ValueError("ranks disagree on %s (from %d to %d): every rank of the group must "
                             "use the same value" % (name, smallest, largest))
        agreed[name] = largest
    agreed["fp8"] = bool(agreed["fp8"])
    return Requirements(**agreed)


# Fields of CommSizing that decide the library's peer-visible buffer layout. The first two are
# capacities (the largest over the ranks serves everyone); the others must be equal.
_SIZING_MAX_FIELDS = ("max_tokens", "max_topk")
_SIZING_EQUAL_FIELDS = ("experts", "hidden", "row_type", "fp8", "fp8_power_of_two")


def encode_sizing_for_max_reduce(sizing):
    """[v, -v] for every layout-deciding field of a planned CommSizing (see decode)."""
    vector = []
    for name in _SIZING_MAX_FIELDS + _SIZING_EQUAL_FIELDS:
        value = int(getattr(sizing, name))
        vector += [value, -value]
    return vector


def decode_sizing_max_reduced(sizing, vector):
    """``sizing`` with the capacities raised to the largest any rank planned; ValueError naming
    the field when ranks planned different fixed fields. Every rank gets the same result from the
    same reduced vector, so all of them create the same communicator (or all raise)."""
    vector = [int(v) for v in vector]
    names = _SIZING_MAX_FIELDS + _SIZING_EQUAL_FIELDS
    if len(vector) != 2 * len(names):
        raise ValueError("sizing agreement vector has %d entries" % len(vector))
    agreed = {}
    for i, name in enumerate(names):
        largest, smallest = vector[2 * i], -vector[2 * i + 1]
        if name in _SIZING_EQUAL_FIELDS and largest != smallest:
            raise ValueError("ranks planned MoE communicators with different %s (from %d to %d): "
                             "every rank of the group must use the same value" % (name, smallest,
                                                                                  largest))
        agreed[name] = largest
    agreed["fp8"] = bool(agreed["fp8"])
    agreed["fp8_power_of_two"] = bool(agreed["fp8_power_of_two"])
    return replace(sizing, **agreed)


@dataclass(frozen=True)
class CommSizing:
    """The sizes a live communicator was created with (the fields of ncclMoeConfig_t we set)."""

    experts: int
    hidden: int
    max_tokens: int
    max_topk: int
    row_type: int
    fp8: bool = False
    fp8_power_of_two: bool = False
    dispatch_sms: Optional[int] = None
    combine_sms: Optional[int] = None
    timeout_ms: Optional[int] = None
    # ncclMoeConfig_t.combineWindowTokens; None: NCCL_MOE_COMBINE_WINDOW_TOKENS (default 0, none)
    combine_window_tokens: Optional[int] = None

    def covers(self, req):
        return (self.experts == req.experts and self.hidden == req.hidden
                and self.row_type == req.row_type and self.fp8 == bool(req.fp8)
                and req.tokens <= self.max_tokens and req.topk <= self.max_topk)

    def to_struct(self):
        def opt(value):
            return structs.NCCL_MOE_UNDEF_INT if value is None else int(value)

        return structs.MoeConfig(
            numExperts=self.experts, hiddenSize=self.hidden, maxTokensPerRank=self.max_tokens,
            maxTopk=self.max_topk, dataType=self.row_type, fp8Dispatch=int(self.fp8),
            fp8PowerOfTwoScales=int(self.fp8_power_of_two), dispatchSms=opt(self.dispatch_sms),
            combineSms=opt(self.combine_sms), timeoutMs=opt(self.timeout_ms),
            combineWindowTokens=opt(self.combine_window_tokens))


def plan_sizing(current, req, *, token_hint=0, topk_hint=0, granularity=TOKEN_GRANULARITY, **settings):
    """The sizing of a new communicator that serves ``req``.

    T and K only grow (a call with fewer tokens after a larger one keeps the larger buffers);
    the fixed fields are taken from the request. ``settings`` carries the non-size fields
    (fp8_power_of_two, dispatch_sms, combine_sms, timeout_ms, combine_window_tokens).
    """
    tokens = max(int(req.tokens), int(token_hint or 0), 1)
    topk = max(int(req.topk), int(topk_hint or 0), 1)
    if current is not None and current.hidden == req.hidden and current.experts == req.experts:
        tokens = max(tokens, current.max_tokens)
        topk = max(topk, current.max_topk)
    topk = min(topk, int(req.experts))
    sizing = CommSizing(experts=int(req.experts), hidden=int(req.hidden),
                        max_tokens=round_up(tokens, granularity), max_topk=topk,
                        row_type=int(req.row_type), fp8=bool(req.fp8))
    return replace(sizing, **settings) if settings else sizing
