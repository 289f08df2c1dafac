/*
 * nccl_moe.h — Mixture-of-Experts dispatch and combine as NCCL-style collectives.
 *
 * Public C API, version 1. Conventions follow NCCL: every call returns ncclResult_t; handles are
 * opaque; configuration structs carry size/magic/version fields and come with an INITIALIZER
 * macro; fields left at NCCL_MOE_UNDEF_INT take the library's default (or the NCCL_MOE_*
 * environment variable that overrides it). After a failure, ncclMoeGetLastError() names the
 * argument, rank or limit that failed.
 *
 * Shapes: T tokens on this rank (may differ between ranks, 0 allowed), H hidden size, E experts
 * in the EP group, R ranks, L = E / R local experts (rank r owns experts [r*L, (r+1)*L)), K top-k.
 * All tensors are dense, row-major and contiguous, in device memory unless stated otherwise; a
 * pointer may be NULL where its extent is zero (T = 0, or no rows received).
 *
 * One MoE layer:
 *   ncclMoeLayoutCreate  (collective) routing -> handle: counts, offsets, receive order
 *   ncclMoeHandleGetCounts   optional, host-synchronising: output rows and per-expert counts
 *   ncclMoeDispatch      (collective) tokens (+probs, expert ids, FP8 scales) to the experts' ranks
 *   ... experts ...
 *   ncclMoeCombine       (collective) unweighted sum of each token's rows back to its rank
 * Backward: dispatch's gradient is ncclMoeCombine of the rows' gradient (with probsGrad for the
 * probabilities); combine's gradient is ncclMoeDispatch on the same handle with no routing
 * outputs (a "cached-handle dispatch": no layout step, no routing inputs).
 *
 * Receive order (canonical, identical to the CPU reference):
 *   NCCL_MOE_LAYOUT_PER_RANK: one row per (source token, destination rank), ordered by source
 *     rank, then source token.
 *   NCCL_MOE_LAYOUT_EXPERT_MAJOR: one row per (source token, local expert); local expert 0's
 *     segment first, then expert 1's, ...; inside a segment by source rank, then source token;
 *     each segment padded with zero rows (zero probs, zero FP8 scales) up to padMultiple.
 * Combine sums in float32 in a fixed order, so results are bit-identical from run to run: per
 * destination rank the token's rows in row order (that partial is rounded to dataType: it travels
 * as one row), then those partials in rank order, rounded once more to dataType.
 *
 * Streams: every call is enqueued on the caller's stream and is stream-ordered with respect to
 * it. Like NCCL collectives, the collective calls of one communicator must be made in the same
 * order on every rank, and must not run concurrently with each other (use one stream per
 * communicator, or order the streams with events).
 */
#ifndef NCCL_MOE_H_
#define NCCL_MOE_H_

#include <cuda_runtime.h>
#include <limits.h>
#include <nccl.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NCCL_MOE_MAJOR 0
#define NCCL_MOE_MINOR 1
#define NCCL_MOE_PATCH 0
#define NCCL_MOE_VERSION(X, Y, Z) ((X) * 10000 + (Y) * 100 + (Z))
#define NCCL_MOE_VERSION_CODE NCCL_MOE_VERSION(NCCL_MOE_MAJOR, NCCL_MOE_MINOR, NCCL_MOE_PATCH)

/* A field left at this value takes the default. */
#define NCCL_MOE_UNDEF_INT INT_MIN
/* Value of the magic field of every versioned struct. */
#define NCCL_MOE_MAGIC 0x6d6f6531u /* "moe1" */
/* Version of the v1 structs below. */
#define NCCL_MOE_STRUCT_VERSION 1u

typedef struct ncclMoeComm* ncclMoeComm_t;
typedef struct ncclMoeHandle* ncclMoeHandle_t;

typedef enum {
  NCCL_MOE_ROUTING_TOPK = 0, /* topkIdx int64 [T,K] global expert ids (-1 = masked slot) +
                                topkProbs fp32 [T,K] */
  NCCL_MOE_ROUTING_MAP = 1   /* routingMap bool (1 byte) [T,E] + denseProbs fp32 [T,E] */
} ncclMoeRoutingFormat_t;

typedef enum {
  NCCL_MOE_LAYOUT_PER_RANK = 0,    /* one row per (token, destination rank): FusedDispatch */
  NCCL_MOE_LAYOUT_EXPERT_MAJOR = 1 /* one row per (token, local expert), expert-major, padded:
                                      HybridEPDispatch */
} ncclMoeLayout_t;

/* ---- Communicator configuration ------------------------------------------------------------ */
typedef struct {
  size_t size;          /* sizeof(ncclMoeConfig_t) */
  unsigned int magic;   /* NCCL_MOE_MAGIC */
  unsigned int version; /* NCCL_MOE_STRUCT_VERSION */
  int numExperts;       /* E, a multiple of the number of ranks (required) */
  int hiddenSize;       /* H, elements per token row (required) */
  int maxTokensPerRank; /* largest T any call may pass (required) */
  int maxTopk;          /* largest K any call may pass (default 8, at most numExperts) */
  int dataType;         /* ncclDataType_t of token rows: ncclBfloat16 (default) or ncclFloat32 */
  int fp8Dispatch;      /* 1: dispatch quantises rows to E4M3 with one fp32 scale per 128
                           channels (a last, shorter block when H % 128 != 0); default 0 */
  int fp8PowerOfTwoScales; /* 1: round each FP8 scale up to a power of two (UE8M0-packable) */
  int dispatchSms;      /* SM budget of dispatch kernels (default 24) */
  int combineSms;       /* SM budget of combine kernels (default 24) */
  int timeoutMs;        /* every wait fails after this long (default 300000; env
                           NCCL_MOE_TIMEOUT_MS overrides the default) */
  /* Low-latency (LL) mode, docs/low_latency.md. Added after the first release of this struct: a
   * caller built against the older header passes the older size, and the LL mode is then off. */
  int lowLatencyMaxTokens; /* N: the most tokens one rank passes to one LL call, 1..1024; 0 or
                              unset (default): LL mode off, no LL buffers reserved */
  int lowLatencyFp8;    /* LL dispatch format: 0 (default) BF16; 1 FP8 E4M3 with one fp32 scale per
                           128 channels; 2 the same with power-of-two scales */
  /* Windowed combine. Added after the low-latency fields: a caller built against an older header
   * passes an older size and gets no windows. */
  int combineWindowTokens; /* C: combine moves the partials of C tokens per source rank at a time,
                              two windows in flight, so its landing area holds 2 x C instead of
                              maxTokensPerRank rows per rank (ncclMoeCommGetInfo's bufferBytes shows
                              the saving); the results are the same bits. Takes effect on a
                              communicator with one NVLink domain when 2 x C < maxTokensPerRank
                              (after ncclMoeCommResize too); then the combine input area of
                              ncclMoeCommGetInputBuffers is absent (combineX NULL). 0: no windows;
                              unset: NCCL_MOE_COMBINE_WINDOW_TOKENS (default 0). Each window costs
                              two cross-rank waits. */
} ncclMoeConfig_t;

#define NCCL_MOE_CONFIG_INITIALIZER                                                        \
  {                                                                                        \
    sizeof(ncclMoeConfig_t), NCCL_MOE_MAGIC, NCCL_MOE_STRUCT_VERSION,                      \
        NCCL_MOE_UNDEF_INT, /* numExperts */ NCCL_MOE_UNDEF_INT, /* hiddenSize */          \
        NCCL_MOE_UNDEF_INT, /* maxTokensPerRank */ NCCL_MOE_UNDEF_INT, /* maxTopk */       \
        NCCL_MOE_UNDEF_INT, /* dataType */ NCCL_MOE_UNDEF_INT, /* fp8Dispatch */           \
        NCCL_MOE_UNDEF_INT, /* fp8PowerOfTwoScales */ NCCL_MOE_UNDEF_INT, /* dispatchSms */ \
        NCCL_MOE_UNDEF_INT, /* combineSms */ NCCL_MOE_UNDEF_INT, /* timeoutMs */           \
        NCCL_MOE_UNDEF_INT, /* lowLatencyMaxTokens */ NCCL_MOE_UNDEF_INT, /* lowLatencyFp8 */ \
        NCCL_MOE_UNDEF_INT /* combineWindowTokens */                                       \
  }

/* ---- Routing of one call ------------------------------------------------------------------- */
typedef struct {
  size_t size;
  unsigned int magic;
  unsigned int version;
  int format;               /* ncclMoeRoutingFormat_t */
  int numTokens;            /* T on this rank: 0 <= T <= maxTokensPerRank */
  int topk;                 /* K (top-k format): 1 <= K <= maxTopk, the same on every rank */
  const int64_t* topkIdx;   /* [T,K] global expert ids, -1 masks a slot; no id twice per token */
  const float* topkProbs;   /* [T,K] */
  const uint8_t* routingMap; /* [T,E] 0/1 */
  const float* denseProbs;  /* [T,E], read only where routingMap is 1 */
} ncclMoeRouting_t;

#define NCCL_MOE_ROUTING_INITIALIZER                                                     \
  {                                                                                      \
    sizeof(ncclMoeRouting_t), NCCL_MOE_MAGIC, NCCL_MOE_STRUCT_VERSION,                   \
        NCCL_MOE_ROUTING_TOPK, 0, 0, NULL, NULL, NULL, NULL                              \
  }

/* ---- Output layout of one call ------------------------------------------------------------- */
typedef struct {
  size_t size;
  unsigned int magic;
  unsigned int version;
  int layout;         /* ncclMoeLayout_t */
  int padMultiple;    /* expert-major: pad each expert's segment to a multiple (0 or 1: none) */
  int64_t rowBudget;  /* expert-major: fixed number of output rows (non-blocking mode; a multiple
                         of padMultiple). Rows past the budget are dropped, the overflow flag is
                         set, tokensPerExpert counts only the rows kept. -1: rows sized from the
                         counts (blocking mode: ncclMoeHandleGetCounts tells the size) */
} ncclMoeLayoutOptions_t;

#define NCCL_MOE_LAYOUT_OPTIONS_INITIALIZER                                                 \
  {                                                                                         \
    sizeof(ncclMoeLayoutOptions_t), NCCL_MOE_MAGIC, NCCL_MOE_STRUCT_VERSION,                \
        NCCL_MOE_LAYOUT_PER_RANK, 0, -1                                                     \
  }

/* ---- Dispatch and combine buffers ---------------------------------------------------------- */
typedef struct {
  size_t size;
  unsigned int magic;
  unsigned int version;
  const void* x;          /* [T,H] dataType: tokens (forward) or combine's output gradient */
  int64_t recvRows;       /* rows allocated in every recv* array below: at least the rows
                             ncclMoeHandleGetCounts reported, or the budget if it was not called */
  void* recvX;            /* [recvRows,H] dataType, or E4M3 bytes when FP8 dispatch is on */
  float* recvScales;      /* FP8: [recvRows, ceil(H/128)] fp32 scales; otherwise NULL */
  int64_t* recvTopkIdx;   /* per-rank layout, top-k routing: [recvRows,K] LOCAL expert ids,
                             -1 where the slot's expert is elsewhere or masked. Optional */
  uint8_t* recvRoutingMap; /* per-rank layout, map routing: [recvRows,L]. Optional */
  float* recvProbs;       /* per-rank: [recvRows,K] (top-k) or [recvRows,L] (map), 0 where not
                             local; expert-major: [recvRows]. Optional */
} ncclMoeDispatchArgs_t;

#define NCCL_MOE_DISPATCH_ARGS_INITIALIZER                                                 \
  {                                                                                        \
    sizeof(ncclMoeDispatchArgs_t), NCCL_MOE_MAGIC, NCCL_MOE_STRUCT_VERSION, NULL, 0, NULL, \
        NULL, NULL, NULL, NULL                                                             \
  }

typedef struct {
  size_t size;
  unsigned int magic;
  unsigned int version;
  const void* x;         /* [rows,H] dataType: expert outputs, in the handle's receive order */
  int64_t rows;          /* rows in x and probsGrad: at least the rows ncclMoeHandleGetCounts
                            reported, or the budget if it was not called */
  void* out;             /* [T,H] dataType: unweighted float32 sum of each token's rows */
  const float* probsGrad; /* optional: gradient of dispatch's recvProbs, same shape */
  float* outProbsGrad;   /* with probsGrad: [T,K] or [T,E] in the routing's format; each slot
                            takes the gradient from the rank owning its expert, 0 elsewhere */
} ncclMoeCombineArgs_t;

#define NCCL_MOE_COMBINE_ARGS_INITIALIZER                                                  \
  {                                                                                        \
    sizeof(ncclMoeCombineArgs_t), NCCL_MOE_MAGIC, NCCL_MOE_STRUCT_VERSION, NULL, 0, NULL,  \
        NULL, NULL                                                                         \
  }

/* ---- Library ------------------------------------------------------------------------------- */

/* NCCL_MOE_VERSION_CODE of the loaded library. */
ncclResult_t ncclMoeGetVersion(int* version);
/* A static string for every ncclResult_t. */
const char* ncclMoeGetErrorString(ncclResult_t result);
/* The last failure's message: of this communicator when comm is not NULL and one of its calls
 * failed (on any thread), else of the calling thread's last failing call; "" when none. Never
 * NULL. Thread-safe: the text is the calling thread's own copy, unchanged by other threads'
 * failures, valid until this thread's next ncclMoeGetLastError call or next failing call. */
const char* ncclMoeGetLastError(ncclMoeComm_t comm);

/* ---- Communicator -------------------------------------------------------------------------- */

/* Collective over every rank of `comm`. The NCCL communicator must outlive the MoE one. Every
 * rank must pass the same numExperts, hiddenSize, maxTokensPerRank, maxTopk, dataType, FP8 and
 * low-latency settings (checked: ncclInvalidUsage names the field and ranks that differ); SM budgets and the
 * timeout may differ. Needs NCCL 2.18 or newer loaded in the process: an older one (ncclGetVersion)
 * fails this rank with ncclInvalidUsage before any NCCL call. Only the first exchange (every
 * rank's verdict on its arguments) runs on `comm`; if a rank never takes part it fails with
 * ncclRemoteError after the timeout and `comm` still has that exchange queued: abort it
 * (ncclCommAbort). Everything after runs on a communicator the library splits from `comm` and
 * owns. */
ncclResult_t ncclMoeCommCreate(ncclComm_t comm, const ncclMoeConfig_t* config,
                               ncclMoeComm_t* moeComm);
/* Collective: waits for this rank's work and for the peers to finish with its buffers, then frees
 * the communicator; handles made from it become stale (destroy them still). A peer that never
 * joins makes it return ncclRemoteError after the timeout, with everything freed (the library's
 * own communicator is aborted; `comm` is not touched). */
ncclResult_t ncclMoeCommDestroy(ncclMoeComm_t moeComm);
/* A failure found on the device after the call that caused it returned (a peer that stopped
 * answering: ncclRemoteError, with the rank, peer, phase and counters in ncclMoeGetLastError).
 * Never blocks. After one, every call on the communicator fails; destroy it. */
ncclResult_t ncclMoeCommGetAsyncError(ncclMoeComm_t comm, ncclResult_t* asyncResult);

/* ---- Layout and handles -------------------------------------------------------------------- */

/* Collective. Validates the routing, computes per-rank/per-expert counts and offsets on the device
 * (every rank reads the others' routing; no host round trip), and returns a handle describing the
 * receive side. The handle keeps what later dispatches and combines need, so the routing arrays
 * may change once the call has run on the stream. If *handle is a live handle of this
 * communicator it is reused in place without allocating (the path a CUDA graph captures); a live
 * handle of another or of a destroyed communicator is refused; otherwise (NULL) a new handle is
 * returned. A bad routing (expert id out of range or repeated, a
 * non-finite probability, a map byte other than 0/1, more than maxTopk experts in a map row) is
 * found on the device: nothing is moved on any rank, and ncclMoeHandleGetCounts (or a later
 * dispatch/combine on the handle, once the layout has run) returns ncclInvalidArgument naming the
 * rank, token and slot. */
ncclResult_t ncclMoeLayoutCreate(ncclMoeComm_t comm, const ncclMoeRouting_t* routing,
                                 const ncclMoeLayoutOptions_t* options, ncclMoeHandle_t* handle,
                                 cudaStream_t stream);
/* Host view of the counts; the only call that waits on the host. It returns as soon as the layout
 * has produced them, which may be before the layout has completed on its stream (it goes on placing
 * rows): enqueue the dispatch on that stream, or order another stream after it with an event, as
 * for every call of a communicator.
 * recvRows: rows this rank receives (blocking mode: the size to allocate; budgeted mode: rows
 * kept). tokensPerExpert (host, [L], may be NULL): per-rank layout: (token, local expert) pairs;
 * expert-major: padded rows kept per expert. overflow (may be NULL): 1 when rows were dropped. */
ncclResult_t ncclMoeHandleGetCounts(ncclMoeHandle_t handle, int64_t* recvRows,
                                    int64_t* tokensPerExpert, int32_t* overflow);
/* Device pointers to the same counts, valid while the handle lives: no synchronisation. */
ncclResult_t ncclMoeHandleGetDeviceCounts(ncclMoeHandle_t handle, const int64_t** recvRows,
                                          const int64_t** tokensPerExpert,
                                          const int32_t** overflow);
ncclResult_t ncclMoeHandleDestroy(ncclMoeHandle_t handle);

/* ---- Data movement ------------------------------------------------------------------------- */

/* Collective. Sends x's rows to the ranks of their experts in the handle's receive order, with
 * probs and local expert ids when those outputs are given. A cached-handle dispatch (combine's
 * backward) is the same call with the gradient as x and no routing outputs. Rows past the used
 * part of a budgeted output are not written. */
ncclResult_t ncclMoeDispatch(ncclMoeComm_t comm, ncclMoeHandle_t handle,
                             const ncclMoeDispatchArgs_t* args, cudaStream_t stream);

/* Collective. out[t] = float32 sum, in the fixed order above, of every row that came from token
 * t; tokens with no row get zeros. With probsGrad, also reduces the per-row probs
 * gradient back to the routing's format (dispatch's backward). */
ncclResult_t ncclMoeCombine(ncclMoeComm_t comm, ncclMoeHandle_t handle,
                            const ncclMoeCombineArgs_t* args, cudaStream_t stream);

/* ---- What a communicator became ------------------------------------------------------------ */

typedef struct {
  size_t size;
  unsigned int magic;
  unsigned int version;
  int rank;            /* this rank in the EP group */
  int ranks;           /* R */
  int domains;         /* NVLink domains the plan chose: 1 = one domain, more = the two-hop path */
  int ranksPerDomain;  /* D (consecutive ranks) */
  int netChunks;       /* two-hop: network transfers per dispatch and combine (1 with one domain) */
  int netChunkRows;    /* two-hop: rows per transfer (the last may hold fewer); 0 with one domain */
  int dispatchSms;     /* SM budgets in use (capped when ranks share a GPU) */
  int combineSms;
  size_t bufferBytes;  /* this rank's peer-visible buffer (the device memory the communicator holds,
                          apart from small bookkeeping and the layout handles) */
  /* Two-hop wire sizes (0 with one domain): one domain's routing-meta slot, a dispatch row and a
   * combine row as they cross the network, and the rows of a whole slot (maxTokensPerRank). */
  size_t metaSlotBytes;
  size_t netDispatchRowBytes;
  size_t netCombineRowBytes;
  size_t netSlotRows;
  /* Low-latency buffers this rank reserved (both parities; docs/low_latency.md section 1.1), apart
   * from bufferBytes; 0 with the LL mode off. With several NVLink domains they include the two-hop
   * regions (network staging, relay rows). Added after the first release of this struct: a caller
   * passing the older size gets every field but this one. */
  size_t lowLatencyBufferBytes;
} ncclMoeCommInfo_t;

#define NCCL_MOE_COMM_INFO_INITIALIZER \
  { sizeof(ncclMoeCommInfo_t), NCCL_MOE_MAGIC, NCCL_MOE_STRUCT_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

/* Not collective, no synchronisation. What ncclMoeCommCreate decided for this communicator: the
 * domains and network chunks of its plan, its SM budgets and its buffer sizes. */
ncclResult_t ncclMoeCommGetInfo(ncclMoeComm_t comm, ncclMoeCommInfo_t* info);

/* Collective, blocking. Re-sizes the high-throughput buffers for maxTokensPerRank tokens per rank
 * (larger or smaller; ncclMoeCommGetInfo's bufferBytes then tells the new size), instead of a
 * destroy and a re-create: the plan, the NCCL communicators, the low-latency buffers and every
 * other setting stay. Every rank passes the same value. It first waits for all work on the
 * communicator's device. Afterwards the handles made before are refused (ncclInvalidUsage:
 * "stale"; make new layouts), the areas of ncclMoeCommGetInputBuffers have moved (call it again)
 * and CUDA graphs that captured high-throughput calls must be captured again. Errors: an invalid
 * size (ncclInvalidArgument), sizes that differ between ranks, a rank that cannot allocate the new
 * buffer or whose communicator failed before (ncclInvalidUsage on every rank, naming the rank):
 * nothing changed, the communicator works at its old size. A failure after every rank agreed (a
 * rank that dies in the middle) leaves it unusable (ncclRemoteError; destroy it). */
ncclResult_t ncclMoeCommResize(ncclMoeComm_t comm, int maxTokensPerRank);

/* ---- Zero-copy inputs ------------------------------------------------------------------------ */

typedef struct {
  size_t size;
  unsigned int magic;
  unsigned int version;
  /* maxTokensPerRank rows of hiddenSize elements of dataType; NULL with fp8Dispatch (the area then
   * holds the quantised rows, which the dispatch kernel writes). */
  void* dispatchX;
  size_t dispatchXBytes;
  /* ranks x maxTokensPerRank rows of hiddenSize elements of dataType: a per-rank handle's rows;
   * NULL (0 bytes) with a windowed combine (ncclMoeConfig_t.combineWindowTokens). */
  void* combineX;
  size_t combineXBytes;
} ncclMoeInputBuffers_t;

#define NCCL_MOE_INPUT_BUFFERS_INITIALIZER \
  { sizeof(ncclMoeInputBuffers_t), NCCL_MOE_MAGIC, NCCL_MOE_STRUCT_VERSION, NULL, 0, NULL, 0 }

/* Not collective. This rank's areas of the communicator's peer-visible buffer, which dispatch and
 * combine read their input rows from. Writing the rows there (stream-ordered before the call) and
 * passing dispatchX as ncclMoeDispatchArgs_t.x, or combineX as ncclMoeCombineArgs_t.x with a
 * per-rank handle, saves the copy of the rows into the buffer: the data moves once instead of
 * twice. From the first call of this function on, every dispatch and combine of this rank ends
 * only when the ranks of its NVLink domain have read its areas, so that new rows may be written
 * there as soon as the call has completed on its stream. combineX with an expert-major handle is
 * refused (ncclInvalidUsage: its rows are summed per token and rank first); a pointer inside an
 * area other than its start is refused (ncclInvalidArgument). */
ncclResult_t ncclMoeCommGetInputBuffers(ncclMoeComm_t comm, ncclMoeInputBuffers_t* buffers);

/* ---- Low-latency mode (decoding) ----------------------------------------------------------- */
/* The contract is docs/low_latency.md. Symbols: N = lowLatencyMaxTokens, P = R x N rows per
 * local-expert segment, B = ceil(H / 128) FP8 scale blocks, P4 = P rounded up to a multiple of 4.
 * Every LL call is collective over the EP group, enqueued on the caller's stream, with no host
 * synchronisation and no allocation, so it can be captured in a CUDA graph and replayed with new
 * routing (new contents at the same addresses; the counts travel on the device). Every rank issues
 * the same sequence of LL calls; LL and high-throughput calls interleave freely (separate buffers).
 * One kernel per call: the plain calls run both halves, or an operation is split into a send half
 * (returns once its rows are posted; no kernel of the library occupies an SM for it afterwards)
 * and a receive half (completes it). Receive halves come in the order of their send halves, one per
 * send half; at most two operations of each kind are outstanding (sent, not received), and a plain
 * call while one of its kind is outstanding is refused.
 * With several NVLink domains the calls run the two-hop path (docs/low_latency.md section 5): a
 * token crosses the network once per destination domain, to its rail peer there, in fixed-size
 * slots over NCCL point-to-point on the library's own stream, and fans out over NVLink; combine
 * sums each domain's slots into one partial there and adds the partials in domain order. Each half
 * is then its kernel(s) with the NCCL group between (the combine's receive half: two kernels), and
 * a send half captured into a CUDA graph needs its receive half in the same capture (the network
 * stream joins the caller's there).
 * Errors checked on the host fail before anything is enqueued (outputs untouched). A routing fault
 * in the ids (an id outside [-1, E), an id twice in one token) or a K that differs between ranks is
 * found on the device and reported on every rank: nothing is written to any output, and
 * ncclMoeCommGetAsyncError returns ncclInvalidArgument naming the rank, token and slot; the
 * communicator is then unusable, as after every asynchronous error. */
typedef struct {
  size_t size;
  unsigned int magic;
  unsigned int version;
  int numTokens;           /* T on this rank: 0 <= T <= lowLatencyMaxTokens (may differ by rank) */
  int topk;                /* K: 1 <= K <= maxTopk, the same on every rank */
  const void* x;           /* [T,H] bf16 tokens (BF16 whatever dataType says) */
  const int64_t* topkIdx;  /* [T,K] global expert ids, -1 masks a slot; no id twice per token */
  void* recvX;             /* [L,P,H] bf16, or E4M3 bytes with lowLatencyFp8: segment l holds the
                              rows of local expert l, sorted by (source rank, source token) */
  float* recvScales;       /* lowLatencyFp8 only: the scale of (l, row i, block b) at element
                              (l*B + b)*P4 + i; otherwise NULL */
  int32_t* recvCount;      /* [L] rows received per local expert (device memory) */
  int32_t* recvSrcInfo;    /* [L,P,3] per row: source rank, source token, top-k slot */
} ncclMoeLowLatencyDispatchArgs_t;

#define NCCL_MOE_LOW_LATENCY_DISPATCH_ARGS_INITIALIZER                                          \
  {                                                                                             \
    sizeof(ncclMoeLowLatencyDispatchArgs_t), NCCL_MOE_MAGIC, NCCL_MOE_STRUCT_VERSION, 0, 0, NULL, \
        NULL, NULL, NULL, NULL, NULL                                                            \
  }

typedef struct {
  size_t size;
  unsigned int magic;
  unsigned int version;
  int numTokens;               /* T of the dispatch whose layout y follows */
  int topk;                    /* K of that dispatch */
  const void* y;               /* [L,P,H] bf16 expert outputs in that dispatch's layout; rows at
                                  or past recvCount[l] are not read */
  const int32_t* recvCount;    /* that dispatch's recvCount and recvSrcInfo, unmodified */
  const int32_t* recvSrcInfo;
  const int64_t* topkIdx;      /* [T,K] the ids that dispatch was given */
  const float* weights;        /* [T,K] fp32 (weighted combine), or NULL (unweighted: every
                                  weight 1). The weight of a masked slot is not read */
  void* out;                   /* [T,H] bf16: per token, the fp32 fmaf chain over its kept slots in
                                  slot order from +0, rounded once to bf16 (+0 for no kept slot);
                                  with several domains the chain per domain, each rounded to bf16,
                                  summed in fp32 in domain order and rounded (docs/low_latency.md
                                  section 5.3) */
} ncclMoeLowLatencyCombineArgs_t;

#define NCCL_MOE_LOW_LATENCY_COMBINE_ARGS_INITIALIZER                                          \
  {                                                                                            \
    sizeof(ncclMoeLowLatencyCombineArgs_t), NCCL_MOE_MAGIC, NCCL_MOE_STRUCT_VERSION, 0, 0, NULL, \
        NULL, NULL, NULL, NULL, NULL                                                           \
  }

/* Collective. Sends every (token, kept slot) to the rank owning its expert (one row per (token,
 * destination rank) over NVLink, FP8-quantised at the source with lowLatencyFp8; with several
 * domains one row per (token, other domain) over the network, fanned out there) and writes the
 * outputs: both halves (one kernel with one domain). */
ncclResult_t ncclMoeLowLatencyDispatch(ncclMoeComm_t comm, const ncclMoeLowLatencyDispatchArgs_t* args,
                                       cudaStream_t stream);
/* The send half: checks the ids, writes the rows into the peers' landing slots and returns. Once it
 * has completed on the stream, x and topkIdx may be overwritten. The output pointers are kept for
 * the receive half, which writes them. */
ncclResult_t ncclMoeLowLatencyDispatchSend(ncclMoeComm_t comm, const ncclMoeLowLatencyDispatchArgs_t* args,
                                           cudaStream_t stream);
/* The receive half of the oldest outstanding dispatch send half: waits for every peer's rows and
 * writes the outputs given to that send half. */
ncclResult_t ncclMoeLowLatencyDispatchRecv(ncclMoeComm_t comm, cudaStream_t stream);

/* Collective. Each expert output goes back to its token's rank, which sums the token's kept slots
 * (weighted, or unweighted with weights NULL) into out: both halves in one kernel. */
ncclResult_t ncclMoeLowLatencyCombine(ncclMoeComm_t comm, const ncclMoeLowLatencyCombineArgs_t* args,
                                      cudaStream_t stream);
/* The send half: reads y, recvCount, recvSrcInfo, topkIdx and weights (all may be overwritten once
 * it has completed on the stream) and writes the expert outputs into their tokens' ranks. */
ncclResult_t ncclMoeLowLatencyCombineSend(ncclMoeComm_t comm, const ncclMoeLowLatencyCombineArgs_t* args,
                                          cudaStream_t stream);
/* The receive half of the oldest outstanding combine send half: waits for every peer's outputs and
 * writes the out given to that send half. */
ncclResult_t ncclMoeLowLatencyCombineRecv(ncclMoeComm_t comm, cudaStream_t stream);

/* ---- Phase timing (profiling) ------------------------------------------------------------- */

/* The phases of the three collectives. One NVLink domain runs Layout{Publish,Scan}, DispatchNvlink
 * and CombineNvlink (one kernel each); the two-hop path runs all of them: the layout's routing
 * meta over the network, dispatch's stage, network chunks, pull of this domain's rows (Nvlink)
 * and of the rows that came over the network (Forward), combine's collection of partials
 * (Nvlink), network chunks and final sum (Reduce). */
typedef enum {
  ncclMoePhaseLayoutPublish = 0,
  ncclMoePhaseLayoutNetwork = 1,
  ncclMoePhaseLayoutScan = 2,
  ncclMoePhaseDispatchStage = 3,
  ncclMoePhaseDispatchNetwork = 4,
  ncclMoePhaseDispatchNvlink = 5,
  ncclMoePhaseDispatchForward = 6,
  ncclMoePhaseCombineNvlink = 7,
  ncclMoePhaseCombineNetwork = 8,
  ncclMoePhaseCombineReduce = 9,
  ncclMoeNumPhases = 10
} ncclMoePhase_t;

typedef struct {
  size_t size;
  unsigned int magic;
  unsigned int version;
  /* Of the last timed call of each collective: when each of its phases started and ended on the
   * GPU, in microseconds from the start of that call on its stream. Phases overlap (the network
   * chunks run beside NVLink work). startUs < 0: the phase did not run in that call. */
  float startUs[ncclMoeNumPhases];
  float endUs[ncclMoeNumPhases];
} ncclMoePhaseTimes_t;

#define NCCL_MOE_PHASE_TIMES_INITIALIZER \
  { sizeof(ncclMoePhaseTimes_t), NCCL_MOE_MAGIC, NCCL_MOE_STRUCT_VERSION, {0}, {0} }

/* Not collective. enable != 0: from the next call on, layouts, dispatches and combines record CUDA
 * events at their phase boundaries (a few microseconds of host time per call; calls enqueued
 * while a stream is captured into a graph are not timed). 0 stops it. */
ncclResult_t ncclMoeCommSetPhaseTiming(ncclMoeComm_t comm, int enable);
/* Waits for the last timed call of each collective and returns its phases (a collective never
 * timed has startUs = -1 for all its phases). ncclInvalidUsage if timing was never enabled. */
ncclResult_t ncclMoeCommGetPhaseTimes(ncclMoeComm_t comm, ncclMoePhaseTimes_t* times);
/* "dispatch.network" etc.; NULL for a value outside the enum. */
const char* ncclMoePhaseName(ncclMoePhase_t phase);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* NCCL_MOE_H_ */
