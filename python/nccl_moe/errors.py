"""Exceptions of the Python layer.

Every failure of the C library becomes an :class:`NcclMoeError` that carries the library's own
message (``ncclMoeGetLastError``: which argument, rank or limit failed), so that a Python traceback
says as much as the C API does. The other classes exist so that callers can tell "not installed"
apart from "used wrongly" without parsing strings.
"""

# ncclResult_t values (nccl.h); the library returns these codes.
RESULT_NAMES = {
    0: "ncclSuccess",
    1: "ncclUnhandledCudaError",
    2: "ncclSystemError",
    3: "ncclInternalError",
    4: "ncclInvalidArgument",
    5: "ncclInvalidUsage",
    6: "ncclRemoteError",
    7: "ncclInProgress",
}

NCCL_INVALID_ARGUMENT = 4
NCCL_INVALID_USAGE = 5
NCCL_REMOTE_ERROR = 6


class NcclMoeError(RuntimeError):
    """A call into libnccl_moe failed.

    Attributes: ``code`` (the ncclResult_t), ``code_name``, ``call`` (the C function) and
    ``detail`` (the library's last-error message).
    """

    def __init__(self, call, code, detail):
        self.call = call
        self.code = int(code)
        self.code_name = RESULT_NAMES.get(self.code, "ncclResult(%d)" % self.code)
        self.detail = detail or ""
        text = "%s failed: %s" % (call, self.code_name)
        if self.detail:
            text += ": " + self.detail
        super().__init__(text)


class StaleHandleError(NcclMoeError):
    """A dispatch handle outlived the communicator buffers it was made with.

    Buffers grow by destroying the MoE communicator and creating a larger one (collectively);
    handles made before that cannot be used any more. Redo the dispatch with the new buffer.
    """


class RemoteError(NcclMoeError):
    """A peer stopped answering (a device-side timeout); the communicator is unusable."""


class LibraryNotFoundError(ImportError):
    """libnccl_moe.so could not be found or loaded; the message lists every place tried."""


class TorchNotAvailableError(ImportError):
    """The PyTorch-facing modules were imported without PyTorch installed."""


def error_for(call, code, detail):
    """The exception class that fits a failing result code and message."""
    text = detail or ""
    if "stale" in text:
        return StaleHandleError(call, code, text)
    if int(code) == NCCL_REMOTE_ERROR:
        return RemoteError(call, code, text)
    return NcclMoeError(call, code, text)
