"""A process group's MoE communicator, sized from the calls it serves and grown on demand.

Megatron keeps one buffer per backend (``_buffer`` for FusedDispatch, ``_hybrid_ep_buffer`` for
HybridEP) and every rank reaches the same calls in the same order, which is what makes creating and
growing the communicator (both collective) safe. Growth of the token count alone resizes the
``ncclMoeComm_t`` in place (ncclMoeCommResize); any other growth (top-k) destroys it and creates a
larger one. Either way handles of the old size then raise StaleHandleError.

Sizes are agreed between ranks before a communicator is created and, in blocking calls, before
every call (one tiny all_reduce): T may differ between ranks, and only the largest T decides
whether to grow, so all ranks take the same decision. The planned sizing itself (which also
depends on per-rank hints such as ``init_hybrid_ep_buffer(seq_len=...)``) is agreed too before a
communicator is created: the library requires the same configuration on every rank.
Non-blocking calls (HybridEP with a row budget, the CUDA-graph path) do not synchronise with the
host; they must fit the live buffer (size it with ``init_hybrid_ep_buffer(seq_len=...)`` or a
blocking call first) and get a clear error otherwise.
"""
import os

from . import shapes
from .comm import MoeComm
from .handles import HandlePool
from .torch_support import agree_requirements, agree_sizing, nccl_comm_pointer, torch

TOKENS_HINT_ENV = "NCCL_MOE_MAX_TOKENS_PER_RANK"
AGREE_ENV = "NCCL_MOE_AGREE_SHAPES"  # "0": skip the per-call agreement in blocking calls too


def _env_int(name, default=0):
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


class CommBuffer:
    """The MoE communicator of one process group and one use (FusedDispatch or HybridEP)."""

    def __init__(self, group, hidden_bytes=0, *, token_hint=0, topk_hint=0, fp8=False,
                 fp8_power_of_two=False, dispatch_sms=None, combine_sms=None, timeout_ms=None,
                 combine_window_tokens=None):
        self.group = group
        self.hidden_bytes = int(hidden_bytes)
        self.token_hint = max(int(token_hint or 0), _env_int(TOKENS_HINT_ENV))
        self.topk_hint = int(topk_hint or 0)
        self.fp8 = bool(fp8)
        self.settings = dict(fp8_power_of_two=bool(fp8_power_of_two), dispatch_sms=dispatch_sms,
                             combine_sms=combine_sms, timeout_ms=timeout_ms,
                             combine_window_tokens=combine_window_tokens)
        self.comm = None
        self.pool = None
        self.device = None
        self.group_size = group.size()
        self.group_rank = group.rank()

    # ---- sizing ------------------------------------------------------------------------------

    @property
    def sizing(self):
        return None if self.comm is None else self.comm.sizing

    def prepare(self, req, *, blocking, device_topk=None):
        """The live MoeComm, created or grown (collectively) so that it serves ``req``."""
        agree = self.comm is None or (blocking and os.environ.get(AGREE_ENV, "1") != "0")
        if agree:
            req = agree_requirements(self.group, req, device_topk)
        if self.comm is not None and self.comm.sizing.covers(req):
            return self.comm
        if self.comm is not None and not agree:
            raise ValueError(
                "this non-blocking call needs %r but the MoE buffer was sized for %r; growing it is "
                "collective and needs a blocking call: size it up front (init_hybrid_ep_buffer("
                "seq_len=...), %s) or make one blocking call with the larger shape first"
                % (req, self.comm.sizing, TOKENS_HINT_ENV))
        sizing = shapes.plan_sizing(self.sizing, req, token_hint=self.token_hint,
                                    topk_hint=self.topk_hint, **self.settings)
        # The hints (seq_len, max_topk, the environment) are per rank: without this the ranks
        # could create communicators of different maxTokensPerRank, whose peer buffers the
        # library lays out differently (rows land at wrong offsets, nothing reports it), and
        # later covers() decisions (growth is collective) could differ between ranks.
        sizing = agree_sizing(self.group, sizing)
        self._replace(sizing)
        return self.comm

    def _replace(self, sizing):
        device = torch.device("cuda", torch.cuda.current_device())
        if self.comm is not None and self.comm.can_resize_to(sizing):
            # Only T grows: ncclMoeCommResize keeps the plan, the NCCL communicators and the LL
            # buffers. Every rank takes this branch (the sizing and the library are the same).
            self._close_pool()
            try:
                self.comm = self.comm.resized(sizing)
            except Exception:
                self.pool = HandlePool(self.comm)  # refused: the communicator works at its old size
                raise
        else:
            self.release()
            self.comm = MoeComm(nccl_comm_pointer(self.group), sizing)
        self.pool = HandlePool(self.comm)
        self.device = device

    def _close_pool(self):
        if self.pool is not None:
            self.pool.close()
            self.pool = None

    def release(self):
        """Collective: destroys the communicator (its handles become stale)."""
        comm, self.comm = self.comm, None
        if comm is None:
            return
        self._close_pool()
        comm.destroy()

    def __repr__(self):
        return "nccl_moe.CommBuffer(group size %d, %r)" % (self.group_size, self.sizing)
