"""ctypes mirrors of the versioned structs and constants of include/nccl_moe.h (API version 1).

Field order and types follow the header exactly; the CPU test suite compiles a C program against
the header and compares sizeof/offsetof and the INITIALIZER values with these classes, so a change
of the header that is not mirrored here fails CI instead of corrupting memory at run time.
"""
import ctypes

NCCL_MOE_UNDEF_INT = -(2 ** 31)  # INT_MIN: "take the library default"
NCCL_MOE_MAGIC = 0x6D6F6531  # "moe1"
NCCL_MOE_STRUCT_VERSION = 1

ROUTING_TOPK = 0
ROUTING_MAP = 1
LAYOUT_PER_RANK = 0
LAYOUT_EXPERT_MAJOR = 1

# ncclDataType_t values the library accepts for token rows.
NCCL_FLOAT32 = 7
NCCL_BFLOAT16 = 9

FP8_BLOCK_CHANNELS = 128


class _Versioned(ctypes.Structure):
    """Base of every v1 struct: fills size/magic/version and the INITIALIZER defaults."""

    _defaults = {}

    def __init__(self, **fields):
        super().__init__()
        self.size = ctypes.sizeof(type(self))
        self.magic = NCCL_MOE_MAGIC
        self.version = NCCL_MOE_STRUCT_VERSION
        for name, value in type(self)._defaults.items():
            setattr(self, name, value)
        for name, value in fields.items():
            if not hasattr(self, name):
                raise AttributeError("%s has no field %r" % (type(self).__name__, name))
            setattr(self, name, value)


_HEADER = [("size", ctypes.c_size_t), ("magic", ctypes.c_uint), ("version", ctypes.c_uint)]


class MoeConfig(_Versioned):
    """ncclMoeConfig_t."""

    _fields_ = _HEADER + [
        ("numExperts", ctypes.c_int),
        ("hiddenSize", ctypes.c_int),
        ("maxTokensPerRank", ctypes.c_int),
        ("maxTopk", ctypes.c_int),
        ("dataType", ctypes.c_int),
        ("fp8Dispatch", ctypes.c_int),
        ("fp8PowerOfTwoScales", ctypes.c_int),
        ("dispatchSms", ctypes.c_int),
        ("combineSms", ctypes.c_int),
        ("timeoutMs", ctypes.c_int),
        ("lowLatencyMaxTokens", ctypes.c_int),
        ("lowLatencyFp8", ctypes.c_int),
        ("combineWindowTokens", ctypes.c_int),
    ]
    _defaults = {name: NCCL_MOE_UNDEF_INT for name, _ in _fields_[3:]}


class MoeRouting(_Versioned):
    """ncclMoeRouting_t."""

    _fields_ = _HEADER + [
        ("format", ctypes.c_int),
        ("numTokens", ctypes.c_int),
        ("topk", ctypes.c_int),
        ("topkIdx", ctypes.c_void_p),
        ("topkProbs", ctypes.c_void_p),
        ("routingMap", ctypes.c_void_p),
        ("denseProbs", ctypes.c_void_p),
    ]
    _defaults = {"format": ROUTING_TOPK, "numTokens": 0, "topk": 0}


class MoeLayoutOptions(_Versioned):
    """ncclMoeLayoutOptions_t."""

    _fields_ = _HEADER + [
        ("layout", ctypes.c_int),
        ("padMultiple", ctypes.c_int),
        ("rowBudget", ctypes.c_int64),
    ]
    _defaults = {"layout": LAYOUT_PER_RANK, "padMultiple": 0, "rowBudget": -1}


class MoeDispatchArgs(_Versioned):
    """ncclMoeDispatchArgs_t."""

    _fields_ = _HEADER + [
        ("x", ctypes.c_void_p),
        ("recvRows", ctypes.c_int64),
        ("recvX", ctypes.c_void_p),
        ("recvScales", ctypes.c_void_p),
        ("recvTopkIdx", ctypes.c_void_p),
        ("recvRoutingMap", ctypes.c_void_p),
        ("recvProbs", ctypes.c_void_p),
    ]
    _defaults = {"recvRows": 0}


class MoeCombineArgs(_Versioned):
    """ncclMoeCombineArgs_t."""

    _fields_ = _HEADER + [
        ("x", ctypes.c_void_p),
        ("rows", ctypes.c_int64),
        ("out", ctypes.c_void_p),
        ("probsGrad", ctypes.c_void_p),
        ("outProbsGrad", ctypes.c_void_p),
    ]
    _defaults = {"rows": 0}


class MoeCommInfo(_Versioned):
    """ncclMoeCommInfo_t (filled by ncclMoeCommGetInfo)."""

    _fields_ = _HEADER + [
        ("rank", ctypes.c_int),
        ("ranks", ctypes.c_int),
        ("domains", ctypes.c_int),
        ("ranksPerDomain", ctypes.c_int),
        ("netChunks", ctypes.c_int),
        ("netChunkRows", ctypes.c_int),
        ("dispatchSms", ctypes.c_int),
        ("combineSms", ctypes.c_int),
        ("bufferBytes", ctypes.c_size_t),
        ("metaSlotBytes", ctypes.c_size_t),
        ("netDispatchRowBytes", ctypes.c_size_t),
        ("netCombineRowBytes", ctypes.c_size_t),
        ("netSlotRows", ctypes.c_size_t),
        ("lowLatencyBufferBytes", ctypes.c_size_t),
    ]
    _defaults = {name: 0 for name, _ in _fields_[3:]}


class MoeLowLatencyDispatchArgs(_Versioned):
    """ncclMoeLowLatencyDispatchArgs_t."""

    _fields_ = _HEADER + [
        ("numTokens", ctypes.c_int),
        ("topk", ctypes.c_int),
        ("x", ctypes.c_void_p),
        ("topkIdx", ctypes.c_void_p),
        ("recvX", ctypes.c_void_p),
        ("recvScales", ctypes.c_void_p),
        ("recvCount", ctypes.c_void_p),
        ("recvSrcInfo", ctypes.c_void_p),
    ]
    _defaults = {"numTokens": 0, "topk": 0}


class MoeLowLatencyCombineArgs(_Versioned):
    """ncclMoeLowLatencyCombineArgs_t."""

    _fields_ = _HEADER + [
        ("numTokens", ctypes.c_int),
        ("topk", ctypes.c_int),
        ("y", ctypes.c_void_p),
        ("recvCount", ctypes.c_void_p),
        ("recvSrcInfo", ctypes.c_void_p),
        ("topkIdx", ctypes.c_void_p),
        ("weights", ctypes.c_void_p),
        ("out", ctypes.c_void_p),
    ]
    _defaults = {"numTokens": 0, "topk": 0}


# Name in the header -> class, for the layout test.
C_STRUCTS = {
    "ncclMoeConfig_t": MoeConfig,
    "ncclMoeRouting_t": MoeRouting,
    "ncclMoeLayoutOptions_t": MoeLayoutOptions,
    "ncclMoeDispatchArgs_t": MoeDispatchArgs,
    "ncclMoeCombineArgs_t": MoeCombineArgs,
    "ncclMoeCommInfo_t": MoeCommInfo,
    "ncclMoeLowLatencyDispatchArgs_t": MoeLowLatencyDispatchArgs,
    "ncclMoeLowLatencyCombineArgs_t": MoeLowLatencyCombineArgs,
}
