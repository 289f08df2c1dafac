"""nccl_moe: Python binding of libnccl_moe (MoE dispatch/combine collectives over NCCL).

``import nccl_moe`` needs neither PyTorch nor the library: both are loaded on first use, so tools
and CI without a GPU can import the package, check the library and read its version.

* ``nccl_moe.fused_a2a``: drop-in backend for Megatron-Core's ``fused_a2a`` (needs PyTorch);
* ``nccl_moe.megatron.install()``: makes Megatron use it without editing Megatron;
* ``nccl_moe.low_latency.LowLatencyBuffer``: the low-latency dispatch/combine for decoding (needs
  PyTorch; graph-capturable, split send/receive halves with a hook, autograd);
* ``nccl_moe.load_library()`` / ``nccl_moe.is_available()``: the ctypes binding of the C API.
"""
from .errors import (LibraryNotFoundError, NcclMoeError, RemoteError, StaleHandleError,
                     TorchNotAvailableError)
from .library import is_available, load_library

__version__ = "0.1.0"

__all__ = [
    "LibraryNotFoundError", "NcclMoeError", "RemoteError", "StaleHandleError",
    "TorchNotAvailableError", "is_available", "load_library", "__version__",
]
