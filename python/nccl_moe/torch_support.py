"""The few places where the Python layer touches PyTorch internals.

Kept in one module so that a PyTorch upgrade that moves something (the ProcessGroup's NCCL
communicator, the CUDA array interface) needs one fix here.
"""
from .errors import TorchNotAvailableError


def require_torch():
    """Imports torch or raises TorchNotAvailableError with what to do about it."""
    try:
        import torch  # noqa: F401
    except ImportError as error:  # includes sys.modules["torch"] = None
        raise TorchNotAvailableError(
            "nccl_moe.fused_a2a needs PyTorch with CUDA (pip install torch): %s. So does "
            "nccl_moe.low_latency. The pure-Python parts (nccl_moe.library, nccl_moe.structs, "
            "nccl_moe.shapes, nccl_moe.comm, nccl_moe.low_latency_shapes, nccl_moe.low_latency_comm) "
            "work without it." % error) from error
    return torch


torch = require_torch()
import torch.distributed as dist  # noqa: E402

from . import shapes, structs  # noqa: E402

_ROW_TYPE_OF_DTYPE = {torch.bfloat16: structs.NCCL_BFLOAT16, torch.float32: structs.NCCL_FLOAT32}
_DTYPE_OF_ROW_TYPE = {v: k for k, v in _ROW_TYPE_OF_DTYPE.items()}
FP8_DTYPE = getattr(torch, "float8_e4m3fn", None)


def row_type_of(dtype):
    """The ncclDataType_t of token rows for a torch dtype (bfloat16 or float32 only)."""
    try:
        return _ROW_TYPE_OF_DTYPE[dtype]
    except KeyError:
        raise TypeError("nccl-moe moves bfloat16 or float32 token rows, got %s" % dtype) from None


def dtype_of_row_type(row_type):
    return _DTYPE_OF_ROW_TYPE[row_type]


def pointer(tensor, name, dtype=None, device=None):
    """Device address of a contiguous CUDA tensor as an int (0 when empty), after checks that
    turn misuse into a clear Python error instead of a wild read on the device."""
    if tensor is None:
        return 0
    if not tensor.is_cuda:
        raise ValueError("%s must be a CUDA tensor, got device %s" % (name, tensor.device))
    if device is not None and tensor.device != device:
        raise ValueError("%s is on %s but the communicator uses %s" % (name, tensor.device, device))
    if dtype is not None and tensor.dtype != dtype:
        raise TypeError("%s must be %s, got %s" % (name, dtype, tensor.dtype))
    if not tensor.is_contiguous():
        raise ValueError("%s must be contiguous" % name)
    return tensor.data_ptr() if tensor.numel() > 0 else 0


def current_stream():
    """The caller's current CUDA stream: every library call is enqueued on it."""
    return torch.cuda.current_stream()


class _DeviceArray:
    """Exposes library-owned device memory through __cuda_array_interface__ (version 2, no
    stream synchronisation: the memory is written on the caller's stream, which also reads it).
    ``owner`` is kept alive by the tensor made from this object (torch holds a reference to it
    until the tensor's storage is freed)."""

    def __init__(self, address, shape, typestr, owner):
        self.owner = owner
        self.__cuda_array_interface__ = {
            "shape": tuple(shape), "typestr": typestr, "data": (int(address), False),
            "version": 2, "strides": None,
        }


def device_view(address, shape, dtype, owner):
    """A zero-copy torch tensor over device memory owned by ``owner``."""
    typestr = {torch.int64: "<i8", torch.int32: "<i4"}[dtype]
    view = torch.as_tensor(_DeviceArray(address, shape, typestr, owner), device="cuda")
    if view.data_ptr() != int(address):
        raise RuntimeError("torch copied the device counts instead of viewing them")
    return view


def resolve_group(group):
    return dist.group.WORLD if group is None else group


def nccl_comm_pointer(group):
    """The ``ncclComm_t`` of a ProcessGroupNCCL, as an int.

    PyTorch creates NCCL communicators lazily; callers run a collective on the group first (the
    requirement agreement does), which initialises it.
    """
    group = resolve_group(group)
    try:
        backend = group._get_backend(torch.device("cuda"))
    except Exception as error:
        raise RuntimeError("the process group has no CUDA (NCCL) backend: %s" % error) from error
    comm_ptr = getattr(backend, "_comm_ptr", None)
    if comm_ptr is None:
        raise RuntimeError("%s has no _comm_ptr(): nccl_moe needs a ProcessGroupNCCL (PyTorch >= 2.2)"
                           % type(backend).__name__)
    value = int(comm_ptr())
    if value == 0:
        raise RuntimeError("the ProcessGroupNCCL has no NCCL communicator yet (run a collective first)")
    return value


def agree_requirements(group, req, device_topk=None):
    """All ranks' largest T and K, and a check that the fixed fields agree (one tiny all_reduce
    on the group; it also makes sure PyTorch's NCCL communicator exists). ``device_topk``: a
    0-dim CUDA tensor that raises K (the routed experts per token of a routing map)."""
    vector = torch.tensor(shapes.encode_for_max_reduce(req), dtype=torch.int64, device="cuda")
    if device_topk is not None:
        vector[1] = torch.maximum(vector[1], device_topk.to(torch.int64))
    dist.all_reduce(vector, op=dist.ReduceOp.MAX, group=resolve_group(group))
    return shapes.decode_max_reduced(vector.tolist())


def agree_sizing(group, sizing):
    """The communicator sizing every rank will create (one tiny all_reduce): capacities raised to
    the largest any rank planned, ValueError (on every rank) when fixed fields differ. Ranks plan
    from per-rank inputs (``seq_len`` hints of init_hybrid_ep_buffer, the environment), and the
    library needs the same buffer layout on every rank."""
    vector = torch.tensor(shapes.encode_sizing_for_max_reduce(sizing), dtype=torch.int64,
                          device="cuda")
    dist.all_reduce(vector, op=dist.ReduceOp.MAX, group=resolve_group(group))
    return shapes.decode_sizing_max_reduced(sizing, vector.tolist())


def dequantize_fp8(values, scales, hidden, dtype):
    """E4M3 rows with one scale per 128 channels back to ``dtype`` (bf16/fp32)."""
    expanded = scales.repeat_interleave(structs.FP8_BLOCK_CHANNELS, dim=1)[:, :hidden]
    return (values.to(torch.float32) * expanded).to(dtype)
