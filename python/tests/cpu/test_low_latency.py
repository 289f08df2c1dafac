"""The low-latency (LL) layer without a GPU: sizes and shapes (docs/low_latency.md), the checks of
each call, the agreement between ranks, the send/receive hooks against a fake communicator, the
bf16 pieces that carry the weights' gradient, and the library's LL entry points as bound."""
import ctypes
import math
import random
import struct
import unittest

from _support import load_library_or_skip, run_python

import nccl_moe
from nccl_moe import errors, structs
from nccl_moe import low_latency_shapes as shapes
from nccl_moe.comm import MoeComm
from nccl_moe.low_latency_comm import HookOrderError, LowLatencyOps
from nccl_moe.low_latency_shapes import LowLatencySizing


def sizing(**fields):
    base = dict(ranks=8, experts=256, hidden=7168, max_tokens=128, max_topk=8)
    base.update(fields)
    return LowLatencySizing(**base).check()


class Sizes(unittest.TestCase):
    def test_segments_and_scale_planes(self):
        s = sizing(max_tokens=33, hidden=333, fp8=shapes.FP8_E4M3)
        self.assertEqual(s.local_experts, 32)
        self.assertEqual(s.segment_rows, 8 * 33)
        self.assertEqual(s.scale_blocks, 3)
        self.assertEqual(s.scale_plane_rows, 264)  # 264 is already a multiple of 4
        self.assertEqual(sizing(ranks=3, experts=3, max_topk=1, max_tokens=5, fp8=1).scale_plane_rows, 16)
        self.assertEqual(s.recv_x_shape, (32, 264, 333))
        self.assertEqual(s.recv_x_dtype, "float8_e4m3fn")
        self.assertEqual(s.recv_scales_shape, (32, 264, 3))
        self.assertEqual(s.recv_scales_strides, (3 * 264, 1, 264))
        self.assertEqual(s.recv_scales_elements, 32 * 3 * 264)
        self.assertEqual(s.src_info_shape, (32, 264, 3))
        self.assertEqual(s.recv_count_shape, (32,))
        # (l * B + b) * P4 + i, and the strided view addresses the same element.
        l, i, b = 5, 17, 2
        self.assertEqual(s.scale_index(l, i, b), (5 * 3 + 2) * 264 + 17)
        strides = s.recv_scales_strides
        self.assertEqual(l * strides[0] + i * strides[1] + b * strides[2], s.scale_index(l, i, b))

    def test_bf16_has_no_scales(self):
        s = sizing()
        self.assertEqual(s.recv_x_dtype, "bfloat16")
        self.assertIsNone(s.recv_scales_shape)
        self.assertIsNone(s.recv_scales_strides)
        self.assertEqual(s.recv_scales_elements, 0)
        rows = 32 * 8 * 128
        self.assertEqual(s.dispatch_output_bytes(), rows * 7168 * 2 + 32 * 4 + rows * 12)
        # The doc's example: [L, P, H] bf16 is 448 MiB at EP8, N = 128, H = 7168.
        self.assertEqual(rows * 7168 * 2, 448 * 1024 * 1024)

    def test_buffer_bytes_match_the_contract_table(self):
        # docs/low_latency.md section 1.1: E = 256, top-8, H = 7168, N = 128, D = 8.
        table = {(8, 0): 58887168, (8, 1): 44665856, (16, 0): 132509696, (16, 1): 100511744,
                 (32, 0): 279754752, (32, 1): 212203520}
        for (ranks, fp8), want in table.items():
            with self.subTest(ranks=ranks, fp8=fp8):
                self.assertEqual(sizing(ranks=ranks, fp8=fp8).buffer_bytes(ranks_per_domain=8), want)
        self.assertEqual(sizing().buffer_bytes(), 58887168)
        with self.assertRaisesRegex(ValueError, "must divide the 8 ranks"):
            sizing().buffer_bytes(ranks_per_domain=3)

    def test_config_struct(self):
        config = sizing(fp8=shapes.FP8_E4M3_POW2, dispatch_sms=12).to_struct()
        self.assertEqual((config.numExperts, config.hiddenSize, config.maxTokensPerRank, config.maxTopk),
                         (256, 7168, 128, 8))
        self.assertEqual((config.lowLatencyMaxTokens, config.lowLatencyFp8), (128, 2))
        self.assertEqual((config.fp8Dispatch, config.fp8PowerOfTwoScales), (1, 1))
        self.assertEqual(config.dataType, structs.NCCL_BFLOAT16)
        self.assertEqual(config.dispatchSms, 12)
        self.assertEqual(config.combineSms, structs.NCCL_MOE_UNDEF_INT)
        self.assertEqual(config.timeoutMs, structs.NCCL_MOE_UNDEF_INT)
        plain = sizing().to_struct()
        self.assertEqual((plain.lowLatencyFp8, plain.fp8Dispatch, plain.fp8PowerOfTwoScales), (0, 0, 0))

    def test_fp8_flags(self):
        self.assertEqual(shapes.fp8_mode(False), 0)
        self.assertEqual(shapes.fp8_mode(True), 1)
        self.assertEqual(shapes.fp8_mode(True, True), 2)
        with self.assertRaisesRegex(ValueError, "needs fp8=True"):
            shapes.fp8_mode(False, True)

    def test_limits(self):
        cases = [
            (dict(max_tokens=0), r"max_tokens=0 must lie in \[1, 1024\]"),
            (dict(max_tokens=1025), r"max_tokens=1025 must lie in \[1, 1024\]"),
            (dict(experts=12), "num_experts=12 must be a positive multiple of the group size 8"),
            (dict(max_topk=300), r"max_topk=300 must lie in \[1, num_experts=256\]"),
            (dict(fp8=3), "fp8 mode 3 must be 0"),
            (dict(hidden=0), "hidden=0 must be positive"),
            (dict(dispatch_sms=0), "dispatch_sms=0 must be positive"),
        ]
        for fields, message in cases:
            with self.subTest(fields=fields), self.assertRaisesRegex(ValueError, message):
                sizing(**fields)
        self.assertEqual(sizing(max_tokens=1024).max_tokens, 1024)


class Agreement(unittest.TestCase):
    def reduce(self, *sizings):
        vectors = [shapes.encode_for_max_reduce(s) for s in sizings]
        return [max(column) for column in zip(*vectors)]

    def test_equal_configurations_pass(self):
        shapes.check_max_reduced(self.reduce(sizing(), sizing(dispatch_sms=4)))  # SMs may differ

    def test_a_difference_is_named(self):
        with self.assertRaisesRegex(ValueError, r"different max_tokens \(from 64 to 128\)"):
            shapes.check_max_reduced(self.reduce(sizing(), sizing(max_tokens=64)))
        with self.assertRaisesRegex(ValueError, r"different fp8 \(from 0 to 1\)"):
            shapes.check_max_reduced(self.reduce(sizing(), sizing(fp8=1)))
        with self.assertRaisesRegex(ValueError, "agreement vector has 3 entries"):
            shapes.check_max_reduced([1, 2, 3])


class CallChecks(unittest.TestCase):
    def test_dispatch_shapes(self):
        s = sizing(max_tokens=16, max_topk=4, hidden=64, experts=16)
        self.assertEqual(shapes.check_dispatch_shapes(s, (16, 64), (16, 4)), (16, 4))
        self.assertEqual(shapes.check_dispatch_shapes(s, (0, 64), (0, 2)), (0, 2))
        cases = [
            (((17, 64), (17, 4)), "x has 17 tokens but the low-latency buffer takes at most max_tokens=16"),
            (((4, 32), (4, 4)), r"x must be \[tokens, 64\], got shape \(4, 32\)"),
            (((4, 64, 1), (4, 4)), r"x must be \[tokens, 64\]"),
            (((4, 64), (5, 4)), r"topk_idx must be \[4, topk\]"),
            (((4, 64), (4,)), r"topk_idx must be \[4, topk\]"),
            (((4, 64), (4, 5)), r"top-k must lie in \[1, max_topk=4\]"),
            (((4, 64), (4, 0)), r"top-k must lie in \[1, max_topk=4\]"),
        ]
        for (x_shape, idx_shape), message in cases:
            with self.subTest(x=x_shape, idx=idx_shape), self.assertRaisesRegex(ValueError, message):
                shapes.check_dispatch_shapes(s, x_shape, idx_shape)

    def test_combine_shapes(self):
        s = sizing(ranks=2, experts=4, hidden=8, max_tokens=3, max_topk=2)
        shapes.check_combine_shapes(s, (2, 6, 8), (3, 2), 3, 2)
        shapes.check_combine_shapes(s, (2, 6, 8), None, 3, 2)
        with self.assertRaisesRegex(ValueError, r"y must be the dispatch layout \(2, 6, 8\)"):
            shapes.check_combine_shapes(s, (12, 8), None, 3, 2)
        with self.assertRaisesRegex(ValueError, r"topk_weights must be \[3, 2\]"):
            shapes.check_combine_shapes(s, (2, 6, 8), (3, 1), 3, 2)

    def test_outputs_must_fit_exactly(self):
        shapes.check_output("out", (4, 8), "bfloat16", (4, 8), "bfloat16")
        with self.assertRaisesRegex(ValueError, r"out must be bfloat16 of shape \(4, 8\), got float32"):
            shapes.check_output("out", (4, 8), "float32", (4, 8), "bfloat16")
        with self.assertRaisesRegex(ValueError, r"recv_scales must have the strides \(6, 1, 3\)"):
            shapes.check_output("recv_scales", (2, 3, 2), "float32", (2, 3, 2), "float32", (6, 2, 1), (6, 1, 3))

    def test_backward_support(self):
        shapes.check_backward_support(sizing(hidden=24), 8, weighted=True, weights_grad=True)
        with self.assertRaisesRegex(ValueError, "fp8=False for training"):
            shapes.check_backward_support(sizing(fp8=1), 8, weighted=False, weights_grad=False)
        with self.assertRaisesRegex(ValueError, "needs hidden >= 16"):
            shapes.check_backward_support(sizing(hidden=15), 8, weighted=True, weights_grad=False)
        with self.assertRaisesRegex(ValueError, "needs hidden >= 24"):
            shapes.check_backward_support(sizing(hidden=23), 8, weighted=True, weights_grad=True)
        shapes.check_backward_support(sizing(hidden=1), 8, weighted=False, weights_grad=False)


class Bf16Pieces(unittest.TestCase):
    @staticmethod
    def is_bf16(value):
        return struct.unpack("<I", struct.pack("<f", value))[0] & 0xFFFF == 0

    def test_pieces_carry_the_value_exactly(self):
        rng = random.Random(7)
        values = [0.0, -0.0, 1.0, -3.0, 3.4028234663852886e38, -3.4028234663852886e38, 2.0 ** -109,
                  1.0 + 2.0 ** -23, 0.1]
        while len(values) < 20000:
            value = rng.choice((-1, 1)) * 2.0 ** rng.uniform(-109, 127.99)
            if abs(shapes._fp32(value)) >= 2.0 ** -109:
                values.append(value)
        for value in values:
            hi, mid, lo = shapes.bf16_pieces(value)
            for piece in (hi, mid, lo):
                self.assertTrue(self.is_bf16(piece), (value, piece))
            self.assertEqual(shapes.join_bf16_pieces(hi, mid, lo), shapes._fp32(value), value)

    def test_non_finite_values_travel_in_the_first_piece(self):
        hi, mid, lo = shapes.bf16_pieces(math.inf)
        self.assertEqual((hi, mid, lo), (math.inf, 0.0, 0.0))
        self.assertTrue(math.isnan(shapes.bf16_pieces(math.nan)[0]))

    def test_tiny_values_lose_only_bits_below_2_to_the_minus_133(self):
        for value in (1e-38, 3e-39, -7e-36):
            back = shapes.join_bf16_pieces(*shapes.bf16_pieces(value))
            self.assertLessEqual(abs(back - shapes._fp32(value)), 2.0 ** -133)


class FakeComm:
    """Records the LL calls MoeComm.low_latency would make."""

    def __init__(self):
        self.calls = []

    def low_latency(self, kind, half, args, stream):
        self.calls.append((kind, half, args, stream))


class Hooks(unittest.TestCase):
    def setUp(self):
        self.comm = FakeComm()
        self.stream = 100
        self.ops = LowLatencyOps(self.comm, lambda: self.stream)

    def dispatch(self, send_only=False, tokens=4):
        return self.ops.dispatch(num_tokens=tokens, topk=2, x=0x1000, topk_idx=0x2000, recv_x=0x3000,
                                 recv_scales=0, recv_count=0x4000, recv_src_info=0x5000, send_only=send_only)

    def combine(self, send_only=False, dispatch_hook=None):
        return self.ops.combine(num_tokens=4, topk=2, y=0x6000, recv_count=0x4000, recv_src_info=0x5000,
                                topk_idx=0x2000, weights=0, out=0x7000, send_only=send_only,
                                dispatch_hook=dispatch_hook)

    def halves(self):
        return [(kind, half) for kind, half, _, _ in self.comm.calls]

    def test_plain_calls_fill_the_structs(self):
        self.assertIsNone(self.dispatch())
        self.assertIsNone(self.combine())
        self.assertEqual(self.halves(), [("dispatch", "both"), ("combine", "both")])
        _, _, d, stream = self.comm.calls[0]
        self.assertIsInstance(d, structs.MoeLowLatencyDispatchArgs)
        self.assertEqual((d.numTokens, d.topk, d.x, d.topkIdx, d.recvX, d.recvCount, d.recvSrcInfo),
                         (4, 2, 0x1000, 0x2000, 0x3000, 0x4000, 0x5000))
        self.assertIsNone(d.recvScales)  # 0 becomes NULL
        self.assertEqual(d.size, ctypes.sizeof(structs.MoeLowLatencyDispatchArgs))
        self.assertEqual(stream, 100)
        _, _, c, _ = self.comm.calls[1]
        self.assertEqual((c.y, c.out, c.topkIdx), (0x6000, 0x7000, 0x2000))
        self.assertIsNone(c.weights)  # unweighted

    def test_hooks_complete_in_order_on_the_stream_of_their_call(self):
        first = self.dispatch(send_only=True)
        second = self.dispatch(send_only=True)
        self.assertEqual((first.sequence, second.sequence), (1, 2))
        self.assertEqual(self.ops.outstanding("dispatch"), 2)
        self.stream = 200  # the receive half goes on the stream current when the hook is called
        first()
        self.assertTrue(first.done)
        self.assertFalse(second.done)
        second()
        self.assertEqual(self.halves(), [("dispatch", "send")] * 2 + [("dispatch", "receive")] * 2)
        self.assertEqual([call[3] for call in self.comm.calls], [100, 100, 200, 200])
        self.assertIsNone(self.comm.calls[2][2])  # a receive half takes no arguments
        self.assertEqual(self.ops.outstanding("dispatch"), 0)

    def test_out_of_order_or_repeated_hooks_call_nothing(self):
        first = self.dispatch(send_only=True)
        second = self.dispatch(send_only=True)
        with self.assertRaisesRegex(HookOrderError, "dispatch #2's hook called before the hook of the older dispatch #1"):
            second()
        first()
        second()
        with self.assertRaisesRegex(HookOrderError, "dispatch #2 was already called"):
            second()
        self.assertEqual(self.halves().count(("dispatch", "receive")), 2)

    def test_at_most_two_outstanding_and_no_plain_call_behind_them(self):
        self.dispatch(send_only=True)
        self.dispatch(send_only=True)
        calls = len(self.comm.calls)
        with self.assertRaisesRegex(HookOrderError, "a third low-latency dispatch send half"):
            self.dispatch(send_only=True)
        with self.assertRaisesRegex(HookOrderError, "a plain low-latency dispatch while 2 send half"):
            self.dispatch()
        self.assertEqual(len(self.comm.calls), calls)
        # The kinds are counted apart: a combine may be split while dispatches are outstanding.
        self.assertIsNotNone(self.combine(send_only=True))

    def test_combine_waits_for_its_dispatch_hook(self):
        hook = self.dispatch(send_only=True)
        with self.assertRaisesRegex(HookOrderError, "combine of low-latency dispatch #1 before its receive hook"):
            self.combine(dispatch_hook=hook)
        hook()
        self.combine(dispatch_hook=hook)
        self.assertEqual(self.halves()[-1], ("combine", "both"))

    def test_a_hook_of_another_buffer_is_refused(self):
        other = LowLatencyOps(FakeComm(), lambda: 0)
        hook = other.dispatch(num_tokens=0, topk=1, x=0, topk_idx=0, recv_x=1, recv_scales=0, recv_count=1,
                              recv_src_info=1, send_only=True)
        with self.assertRaisesRegex(HookOrderError, "belongs to another low-latency buffer"):
            self.ops.receive(hook)

    def test_a_failed_call_leaves_no_hook(self):
        class Failing(FakeComm):
            def low_latency(self, kind, half, args, stream):
                raise nccl_moe.NcclMoeError("ncclMoeLowLatencyDispatchSend", 4, "rank 0: numTokens=9 ...")

        ops = LowLatencyOps(Failing(), lambda: 0)
        with self.assertRaises(nccl_moe.NcclMoeError):
            ops.dispatch(num_tokens=9, topk=1, x=1, topk_idx=1, recv_x=1, recv_scales=0, recv_count=1,
                         recv_src_info=1, send_only=True)
        self.assertEqual(ops.outstanding("dispatch"), 0)


class LibraryEntryPoints(unittest.TestCase):
    """Needs a built libnccl_moe.so (tools/build.sh, or NCCL_MOE_LIBRARY); no GPU."""

    @classmethod
    def setUpClass(cls):
        cls.lib = load_library_or_skip()

    def null_comm(self):
        comm = MoeComm.__new__(MoeComm)
        comm.lib, comm._ptr, comm.destroyed, comm.generation = self.lib, ctypes.c_void_p(), False, 1
        return comm

    def test_every_half_is_bound_and_reports_the_library_message(self):
        comm = self.null_comm()
        for (kind, half), name in MoeComm._LL_CALLS.items():
            self.assertIsNotNone(self.lib.functions[name], name)
            args = None
            if half != "receive":
                args = (structs.MoeLowLatencyDispatchArgs if kind == "dispatch" else structs.MoeLowLatencyCombineArgs)()
            with self.subTest(call=name), self.assertRaises(nccl_moe.NcclMoeError) as caught:
                comm.low_latency(kind, half, args, 0)
            self.assertEqual(caught.exception.call, name)
            self.assertEqual(caught.exception.code, errors.NCCL_INVALID_ARGUMENT)
            self.assertIn("comm is NULL", str(caught.exception))

    def test_comm_info_is_bound(self):
        with self.assertRaisesRegex(nccl_moe.NcclMoeError, "ncclMoeCommGetInfo failed: ncclInvalidArgument"):
            self.null_comm().info()


class ImportWithoutTorch(unittest.TestCase):
    def test_pure_modules_import_and_the_torch_module_says_what_is_missing(self):
        result = run_python(
            "import sys; sys.modules['torch'] = None\n"
            "import nccl_moe.low_latency_shapes, nccl_moe.low_latency_comm\n"
            "try:\n"
            "    import nccl_moe.low_latency\n"
            "except nccl_moe.TorchNotAvailableError as error:\n"
            "    print('ERROR', error)\n")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("needs PyTorch with CUDA", result.stdout)
        self.assertIn("So does nccl_moe.low_latency.", result.stdout)


if __name__ == "__main__":
    unittest.main()
