"""Low-latency (LL) mode: sizes, output shapes and argument checks, without PyTorch.

The contract is docs/low_latency.md. Symbols: R ranks, E experts, L = E / R local experts, H hidden
size, N = ``max_tokens`` (the communicator's ``lowLatencyMaxTokens``), P = R x N rows per local
expert segment, B = ceil(H / 128) FP8 scale blocks, P4 = P rounded up to a multiple of 4, K the
call's top-k.

Everything here is plain integer arithmetic over shapes (tuples) and dtype names, so the CPU tests
check it without a GPU or PyTorch; ``nccl_moe.low_latency`` applies it to torch tensors.
"""
import math
import struct
from dataclasses import dataclass
from typing import Optional

from . import structs

MAX_TOKENS = 1024          # the largest lowLatencyMaxTokens the library accepts
FP8_OFF = 0                # lowLatencyFp8 values: BF16 dispatch
FP8_E4M3 = 1               # E4M3 codes with one fp32 scale per 128 channels
FP8_E4M3_POW2 = 2          # the same, scales rounded up to powers of two
SLOT_ALIGN = 16            # every LL buffer slot and row starts 16-byte aligned
SIGNAL_BYTES_PER_RANK = 64
SCALE_PLANE_ALIGN = 4      # each FP8 scale plane holds P rounded up to 4 floats
PARITIES = 2               # double buffering
SRC_INFO_FIELDS = 3        # per received row: source rank, source token, top-k slot

# Channels of a token row the backward passes borrow (see nccl_moe.low_latency): the weighted
# combine's backward sends each token's K fp32 weights as 2K bf16 bit patterns, the weights'
# gradient comes back as K values of three bf16 pieces each.
PACKED_WEIGHT_CHANNELS_PER_SLOT = 2
WEIGHT_GRAD_CHANNELS_PER_SLOT = 3


def ceil_div(a, b):
    return -(-int(a) // int(b))


def round_up(value, multiple):
    return ceil_div(value, multiple) * int(multiple)


def fp8_mode(fp8, power_of_two_scales=False):
    """lowLatencyFp8 from the Python flags: False -> 0, True -> 1 (2 with power-of-two scales)."""
    if power_of_two_scales and not fp8:
        raise ValueError("fp8_power_of_two_scales=True needs fp8=True (the scales belong to FP8 dispatch)")
    if not fp8:
        return FP8_OFF
    return FP8_E4M3_POW2 if power_of_two_scales else FP8_E4M3


@dataclass(frozen=True)
class LowLatencySizing:
    """What an LL communicator is created with (the fields of ncclMoeConfig_t nccl_moe sets).

    The library also requires ``maxTokensPerRank`` (the high-throughput buffers): it is N, so the
    same communicator serves high-throughput calls of up to N tokens per rank too."""

    ranks: int
    experts: int
    hidden: int
    max_tokens: int
    max_topk: int = 8
    fp8: int = FP8_OFF
    dispatch_sms: Optional[int] = None
    combine_sms: Optional[int] = None
    timeout_ms: Optional[int] = None

    def check(self):
        """ValueError naming the first field out of its range (the library's limits)."""
        if self.ranks < 1:
            raise ValueError("the group has %d ranks" % self.ranks)
        if self.experts < 1 or self.experts % self.ranks != 0:
            raise ValueError("num_experts=%d must be a positive multiple of the group size %d"
                             % (self.experts, self.ranks))
        if self.hidden < 1:
            raise ValueError("hidden=%d must be positive" % self.hidden)
        if not 1 <= self.max_tokens <= MAX_TOKENS:
            raise ValueError("max_tokens=%d must lie in [1, %d] (lowLatencyMaxTokens; larger batches "
                             "belong to the high-throughput calls)" % (self.max_tokens, MAX_TOKENS))
        if not 1 <= self.max_topk <= self.experts:
            raise ValueError("max_topk=%d must lie in [1, num_experts=%d]" % (self.max_topk, self.experts))
        if self.fp8 not in (FP8_OFF, FP8_E4M3, FP8_E4M3_POW2):
            raise ValueError("fp8 mode %r must be 0 (BF16), 1 (FP8) or 2 (FP8, power-of-two scales)"
                             % (self.fp8,))
        for name in ("dispatch_sms", "combine_sms", "timeout_ms"):
            value = getattr(self, name)
            if value is not None and int(value) < 1:
                raise ValueError("%s=%d must be positive (None: the library's default)" % (name, value))
        return self

    # ---- derived sizes ---------------------------------------------------------------------

    @property
    def local_experts(self):
        return self.experts // self.ranks

    @property
    def segment_rows(self):
        """P = R x N: the capacity of one local expert's segment."""
        return self.ranks * self.max_tokens

    @property
    def scale_blocks(self):
        return ceil_div(self.hidden, structs.FP8_BLOCK_CHANNELS)

    @property
    def scale_plane_rows(self):
        """P4: each (segment, block) plane of FP8 scales starts 16-byte aligned."""
        return round_up(self.segment_rows, SCALE_PLANE_ALIGN)

    @property
    def recv_x_shape(self):
        return (self.local_experts, self.segment_rows, self.hidden)

    @property
    def recv_x_dtype(self):
        """The dtype name of the dispatch rows."""
        return "float8_e4m3fn" if self.fp8 else "bfloat16"

    @property
    def recv_scales_shape(self):
        """FP8: the logical [L, P, B] scale tensor (None with BF16 dispatch)."""
        return (self.local_experts, self.segment_rows, self.scale_blocks) if self.fp8 else None

    @property
    def recv_scales_strides(self):
        """Element strides of that tensor: the row index is contiguous, each block plane holds P4."""
        if not self.fp8:
            return None
        return (self.scale_blocks * self.scale_plane_rows, 1, self.scale_plane_rows)

    @property
    def recv_scales_elements(self):
        """fp32 elements of the storage under the scale tensor (L x B x P4)."""
        return self.local_experts * self.scale_blocks * self.scale_plane_rows if self.fp8 else 0

    def scale_index(self, segment, row, block):
        """Element offset of the scale of (segment, row, block): (l x B + b) x P4 + i."""
        return (segment * self.scale_blocks + block) * self.scale_plane_rows + row

    @property
    def recv_count_shape(self):
        return (self.local_experts,)

    @property
    def src_info_shape(self):
        return (self.local_experts, self.segment_rows, SRC_INFO_FIELDS)

    def dispatch_output_bytes(self):
        """Device bytes of one set of dispatch outputs (rows, scales, counts, source info): the
        caller's memory, apart from the communicator's LL buffers."""
        rows = self.local_experts * self.segment_rows
        return (rows * self.hidden * (1 if self.fp8 else 2) + self.recv_scales_elements * 4
                + self.local_experts * 4 + rows * SRC_INFO_FIELDS * 4)

    def buffer_bytes(self, ranks_per_domain=None):
        """lowLatencyBufferBytes of docs/low_latency.md section 1.1: both parities of every region,
        for NVLink domains of ``ranks_per_domain`` ranks (None: one domain)."""
        R, N, K, H = self.ranks, self.max_tokens, self.max_topk, self.hidden
        D = R if ranks_per_domain is None else int(ranks_per_domain)
        if D < 1 or R % D != 0:
            raise ValueError("ranks_per_domain=%d must divide the %d ranks" % (D, R))
        M = R // D
        header = round_up(4 * (2 * K + 1), SLOT_ALIGN)  # t + 1, K ids, K row numbers
        counts = round_up(4 * R * (self.experts // R), SLOT_ALIGN)  # every source's rows per local expert
        if self.fp8:
            row = round_up(H, SLOT_ALIGN) + round_up(4 * self.scale_blocks, SLOT_ALIGN)
        else:
            row = round_up(2 * H, SLOT_ALIGN)
        slot = header + row
        combine_row = round_up(2 * H, SLOT_ALIGN)
        weights = round_up(4 * K, SLOT_ALIGN)
        per_parity = (SIGNAL_BYTES_PER_RANK * R + counts + (R + 2 * (M - 1)) * N * slot + M * N * K * combine_row
                      + 2 * (M - 1) * N * weights + 2 * (M - 1) * N * combine_row)
        return PARITIES * per_parity

    def to_struct(self):
        """The ncclMoeConfig_t of this communicator (LL rows are BF16; maxTokensPerRank = N)."""
        def opt(value):
            return structs.NCCL_MOE_UNDEF_INT if value is None else int(value)

        return structs.MoeConfig(
            numExperts=self.experts, hiddenSize=self.hidden, maxTokensPerRank=self.max_tokens,
            maxTopk=self.max_topk, dataType=structs.NCCL_BFLOAT16, fp8Dispatch=int(self.fp8 != FP8_OFF),
            fp8PowerOfTwoScales=int(self.fp8 == FP8_E4M3_POW2), dispatchSms=opt(self.dispatch_sms),
            combineSms=opt(self.combine_sms), timeoutMs=opt(self.timeout_ms),
            lowLatencyMaxTokens=self.max_tokens, lowLatencyFp8=self.fp8)


# ---- agreement between ranks --------------------------------------------------------------------

_EQUAL_FIELDS = ("experts", "hidden", "max_tokens", "max_topk", "fp8")


def encode_for_max_reduce(sizing):
    """[v, -v] for every field the library needs equal on every rank: the element-wise MAX over
    the ranks gives each field's largest and (negated) smallest value."""
    vector = []
    for name in _EQUAL_FIELDS:
        value = int(getattr(sizing, name))
        vector += [value, -value]
    return vector


def check_max_reduced(vector):
    """ValueError (the same on every rank) naming the first field the ranks disagree on."""
    vector = [int(v) for v in vector]
    if len(vector) != 2 * len(_EQUAL_FIELDS):
        raise ValueError("LL agreement vector has %d entries" % len(vector))
    for i, name in enumerate(_EQUAL_FIELDS):
        largest, smallest = vector[2 * i], -vector[2 * i + 1]
        if largest != smallest:
            raise ValueError("ranks create the low-latency buffer with different %s (from %d to %d): "
                             "every rank of the group must pass the same value" % (name, smallest, largest))


# ---- checks of one call -------------------------------------------------------------------------

def check_dispatch_shapes(sizing, x_shape, idx_shape):
    """(T, K) of a dispatch of x [T, H] with top-k ids [T, K]; ValueError naming the argument."""
    x_shape, idx_shape = tuple(x_shape), tuple(idx_shape)
    if len(x_shape) != 2 or x_shape[1] != sizing.hidden:
        raise ValueError("x must be [tokens, %d], got shape %s" % (sizing.hidden, x_shape))
    if len(idx_shape) != 2 or idx_shape[0] != x_shape[0]:
        raise ValueError("topk_idx must be [%d, topk] (one row per token of x), got shape %s"
                         % (x_shape[0], idx_shape))
    tokens, topk = x_shape[0], idx_shape[1]
    if tokens > sizing.max_tokens:
        raise ValueError("x has %d tokens but the low-latency buffer takes at most max_tokens=%d per "
                         "rank and call (larger batches: the high-throughput calls)"
                         % (tokens, sizing.max_tokens))
    if not 1 <= topk <= sizing.max_topk:
        raise ValueError("topk_idx has %d columns; top-k must lie in [1, max_topk=%d]" % (topk, sizing.max_topk))
    return tokens, topk


def check_combine_shapes(sizing, y_shape, weights_shape, tokens, topk):
    """y must be the dispatch layout [L, P, H]; weights [T, K] or None."""
    if tuple(y_shape) != sizing.recv_x_shape:
        raise ValueError("y must be the dispatch layout %s (local experts, R x max_tokens rows, hidden), "
                         "got shape %s" % (sizing.recv_x_shape, tuple(y_shape)))
    if weights_shape is not None and tuple(weights_shape) != (tokens, topk):
        raise ValueError("topk_weights must be [%d, %d] like the dispatch's topk_idx, got shape %s"
                         % (tokens, topk, tuple(weights_shape)))


def check_output(name, shape, dtype, want_shape, want_dtype, strides=None, want_strides=None):
    """A caller's output tensor as the call writes it: never reallocated, so it must fit exactly."""
    if tuple(shape) != tuple(want_shape) or dtype != want_dtype:
        raise ValueError("%s must be %s of shape %s, got %s of shape %s"
                         % (name, want_dtype, tuple(want_shape), dtype, tuple(shape)))
    if want_strides is not None and tuple(strides) != tuple(want_strides):
        raise ValueError("%s must have the strides %s (the row index contiguous, block planes of %d "
                         "rows), got %s" % (name, tuple(want_strides), want_strides[2], tuple(strides)))


def check_backward_support(sizing, topk, weighted, weights_grad):
    """What the combine's backward needs of the communicator (docs/low_latency.md section 7), checked
    at forward time so that a training step fails before any collective call instead of in the
    backward pass. ``weighted``: the combine has weights; ``weights_grad``: their gradient is wanted."""
    if sizing.fp8:
        raise ValueError("the backward of a low-latency combine is a BF16 dispatch, which a communicator "
                         "with FP8 dispatch (lowLatencyFp8=%d) does not offer: create the buffer with "
                         "fp8=False for training" % sizing.fp8)
    if weighted and sizing.hidden < PACKED_WEIGHT_CHANNELS_PER_SLOT * topk:
        raise ValueError("the weighted combine's backward sends each token's %d weights in one token row "
                         "of %d bf16 channels: it needs hidden >= %d"
                         % (topk, sizing.hidden, PACKED_WEIGHT_CHANNELS_PER_SLOT * topk))
    if weights_grad and sizing.hidden < WEIGHT_GRAD_CHANNELS_PER_SLOT * topk:
        raise ValueError("the gradient of the combine weights comes back as %d values of %d bf16 pieces in "
                         "one token row of %d channels: it needs hidden >= %d"
                         % (topk, WEIGHT_GRAD_CHANNELS_PER_SLOT, sizing.hidden,
                            WEIGHT_GRAD_CHANNELS_PER_SLOT * topk))


# ---- the weights' gradient as bf16 pieces ---------------------------------------------------------

def _fp32(value):
    return struct.unpack("<f", struct.pack("<f", value))[0]


def _high_half(value):
    """The fp32 pattern of ``value`` with its low 16 bits cleared: a bf16 value, exactly."""
    bits = struct.unpack("<I", struct.pack("<f", value))[0] & 0xFFFF0000
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def bf16_pieces(value):
    """(hi, mid, lo): three bf16-representable floats with fp32 (hi + mid) + lo == fp32(value) for
    finite |value| >= 2^-109 (smaller values lose their bits below 2^-133); a non-finite value is
    (value, 0, 0). What nccl_moe.low_latency does on tensors to carry a weight gradient through a
    BF16 combine (each piece is the only non-zero term of its channel, so the sum returns it
    unchanged)."""
    value = _fp32(value)
    if not math.isfinite(value):
        return value, 0.0, 0.0
    hi = _high_half(value)
    rest = _fp32(value - hi)
    mid = _high_half(rest)
    return hi, mid, _fp32(rest - mid)


def join_bf16_pieces(hi, mid, lo):
    """The fp32 value the pieces carry: (hi + mid) + lo with fp32 rounding."""
    return _fp32(_fp32(hi + mid) + lo)
