"""Buffer sizing, agreement between ranks and output-shape arithmetic (pure Python)."""
import unittest

import _support  # noqa: F401

from nccl_moe import shapes, structs
from nccl_moe.shapes import CommSizing, Requirements

BF16 = structs.NCCL_BFLOAT16


class Arithmetic(unittest.TestCase):
    def test_fp8_scale_blocks(self):
        self.assertEqual(shapes.fp8_scale_blocks(128), 1)
        self.assertEqual(shapes.fp8_scale_blocks(129), 2)
        self.assertEqual(shapes.fp8_scale_blocks(7168), 56)
        self.assertEqual(shapes.fp8_scale_blocks(333), 3)

    def test_local_experts(self):
        self.assertEqual(shapes.local_expert_count(64, 8), 8)
        with self.assertRaisesRegex(ValueError, "multiple of the group size"):
            shapes.local_expert_count(10, 4)

    def test_pad_and_budget(self):
        self.assertEqual(shapes.effective_pad(None), 1)
        self.assertEqual(shapes.effective_pad(0), 1)
        self.assertEqual(shapes.effective_pad(16), 16)
        self.assertEqual(shapes.check_row_budget(64, 16), 64)
        with self.assertRaisesRegex(ValueError, "multiple of pad_multiple=16"):
            shapes.check_row_budget(60, 16)
        with self.assertRaises(ValueError):
            shapes.check_row_budget(-1, None)

    def test_expert_major_rows_blocking(self):
        kept, rows, overflow = shapes.expert_major_rows([3, 0, 17], 8)
        self.assertEqual(kept, [8, 0, 24])
        self.assertEqual(rows, 32)
        self.assertFalse(overflow)

    def test_expert_major_rows_budget_cuts_the_padded_layout(self):
        kept, rows, overflow = shapes.expert_major_rows([3, 5, 17], 4, budget=16)
        # padded 4, 8, 20: the third segment starts at 12 and keeps 4 rows
        self.assertEqual(kept, [4, 8, 4])
        self.assertEqual(rows, 16)
        self.assertTrue(overflow)
        kept, rows, overflow = shapes.expert_major_rows([3, 5], 4, budget=16)
        self.assertEqual((kept, rows, overflow), ([4, 8], 12, False))
        for per_expert in ([3, 5, 17], [0, 0], [16, 16, 16]):
            kept, _, _ = shapes.expert_major_rows(per_expert, 16, budget=32)
            self.assertTrue(all(k % 16 == 0 for k in kept))


class Agreement(unittest.TestCase):
    def test_max_reduce_round_trip(self):
        a = Requirements(tokens=10, topk=4, hidden=256, experts=32, row_type=BF16)
        b = Requirements(tokens=0, topk=6, hidden=256, experts=32, row_type=BF16)
        reduced = [max(x, y) for x, y in zip(shapes.encode_for_max_reduce(a),
                                             shapes.encode_for_max_reduce(b))]
        agreed = shapes.decode_max_reduced(reduced)
        self.assertEqual(agreed, Requirements(tokens=10, topk=6, hidden=256, experts=32,
                                              row_type=BF16))

    def test_disagreement_names_the_field(self):
        a = Requirements(tokens=10, topk=4, hidden=256, experts=32, row_type=BF16)
        b = Requirements(tokens=10, topk=4, hidden=512, experts=32, row_type=BF16)
        reduced = [max(x, y) for x, y in zip(shapes.encode_for_max_reduce(a),
                                             shapes.encode_for_max_reduce(b))]
        with self.assertRaisesRegex(ValueError, "ranks disagree on hidden \\(from 256 to 512\\)"):
            shapes.decode_max_reduced(reduced)

    def test_topk_of_the_topk_format_must_be_equal(self):
        a = Requirements(tokens=5, topk=4, hidden=8, experts=8, row_type=BF16, same_topk=4)
        b = Requirements(tokens=5, topk=2, hidden=8, experts=8, row_type=BF16, same_topk=2)
        reduced = [max(x, y) for x, y in zip(shapes.encode_for_max_reduce(a),
                                             shapes.encode_for_max_reduce(b))]
        with self.assertRaisesRegex(ValueError, "same_topk"):
            shapes.decode_max_reduced(reduced)

    def test_fp8_flag_survives(self):
        a = Requirements(tokens=1, topk=1, hidden=8, experts=2, row_type=BF16, fp8=True)
        self.assertTrue(shapes.decode_max_reduced(shapes.encode_for_max_reduce(a)).fp8)


class Sizing(unittest.TestCase):
    req = Requirements(tokens=100, topk=4, hidden=256, experts=32, row_type=BF16)

    def test_first_sizing_rounds_tokens(self):
        sizing = shapes.plan_sizing(None, self.req)
        self.assertEqual((sizing.max_tokens, sizing.max_topk), (128, 4))
        self.assertTrue(sizing.covers(self.req))

    def test_hints_and_settings(self):
        sizing = shapes.plan_sizing(None, self.req, token_hint=1000, topk_hint=8, dispatch_sms=20)
        self.assertEqual((sizing.max_tokens, sizing.max_topk, sizing.dispatch_sms), (1024, 8, 20))
        self.assertEqual(shapes.plan_sizing(None, self.req, topk_hint=99).max_topk, 32)

    def test_growth_keeps_the_larger_sizes(self):
        first = shapes.plan_sizing(None, self.req)
        bigger = Requirements(tokens=300, topk=2, hidden=256, experts=32, row_type=BF16)
        self.assertFalse(first.covers(bigger))
        grown = shapes.plan_sizing(first, bigger)
        self.assertEqual((grown.max_tokens, grown.max_topk), (320, 4))
        self.assertTrue(grown.covers(self.req) and grown.covers(bigger))

    def test_fixed_fields_must_match(self):
        sizing = shapes.plan_sizing(None, self.req)
        for change in (dict(hidden=512), dict(experts=64), dict(row_type=structs.NCCL_FLOAT32),
                       dict(fp8=True)):
            other = Requirements(**{**self.req.__dict__, **change})
            self.assertFalse(sizing.covers(other), change)

    def test_zero_tokens_everywhere_still_sizes_a_buffer(self):
        sizing = shapes.plan_sizing(None, Requirements(tokens=0, topk=0, hidden=8, experts=4,
                                                       row_type=BF16))
        self.assertEqual((sizing.max_tokens, sizing.max_topk), (64, 1))

    def test_to_struct(self):
        sizing = CommSizing(experts=32, hidden=256, max_tokens=128, max_topk=4, row_type=BF16,
                            fp8=True, combine_sms=16)
        config = sizing.to_struct()
        self.assertEqual((config.numExperts, config.hiddenSize, config.maxTokensPerRank,
                          config.maxTopk, config.dataType, config.fp8Dispatch, config.combineSms),
                         (32, 256, 128, 4, BF16, 1, 16))
        self.assertEqual(config.dispatchSms, structs.NCCL_MOE_UNDEF_INT)
        self.assertEqual(config.timeoutMs, structs.NCCL_MOE_UNDEF_INT)
        self.assertEqual(config.combineWindowTokens, structs.NCCL_MOE_UNDEF_INT)  # the environment's
        self.assertEqual(config.magic, structs.NCCL_MOE_MAGIC)
        windowed = shapes.plan_sizing(None, Requirements(tokens=4096, topk=8, hidden=256, experts=32,
                                                         row_type=BF16), combine_window_tokens=1024)
        self.assertEqual(windowed.to_struct().combineWindowTokens, 1024)


def max_reduce(vectors):
    return [max(column) for column in zip(*vectors)]


class SizingAgreement(unittest.TestCase):
    """Ranks plan from per-rank hints (seq_len of init_hybrid_ep_buffer differs with T); the
    communicators they create must still be identical (the library's peer buffer layout depends
    on maxTokensPerRank and maxTopk)."""

    req = Requirements(tokens=55, topk=4, hidden=128, experts=16, row_type=BF16)  # agreed max T

    def agree(self, plans):
        reduced = max_reduce([shapes.encode_sizing_for_max_reduce(p) for p in plans])
        return [shapes.decode_sizing_max_reduced(p, reduced) for p in plans]

    def test_per_rank_token_hints_give_one_sizing(self):
        # hybrid/pad8_skewed_zero_rank on 2 ranks: T = 0 and 55, seq_len = T + 14 -> 64 vs 128.
        plans = [shapes.plan_sizing(None, self.req, token_hint=hint, dispatch_sms=24)
                 for hint in (0 + 14, 55 + 14)]
        self.assertNotEqual(plans[0].max_tokens, plans[1].max_tokens)
        agreed = self.agree(plans)
        self.assertEqual(agreed[0], agreed[1])
        self.assertEqual((agreed[0].max_tokens, agreed[0].max_topk, agreed[0].dispatch_sms),
                         (128, 4, 24))
        self.assertTrue(agreed[0].covers(self.req))

    def test_topk_hints_take_the_largest(self):
        plans = [shapes.plan_sizing(None, self.req, topk_hint=k) for k in (0, 8)]
        self.assertEqual({a.max_topk for a in self.agree(plans)}, {8})

    def test_local_settings_stay_local(self):
        plans = [shapes.plan_sizing(None, self.req, dispatch_sms=s, timeout_ms=t)
                 for s, t in ((16, None), (24, 5000))]
        agreed = self.agree(plans)
        self.assertEqual([(a.dispatch_sms, a.timeout_ms) for a in agreed], [(16, None), (24, 5000)])

    def test_fixed_fields_must_be_equal(self):
        base = shapes.plan_sizing(None, self.req)
        for change in (dict(hidden=256), dict(experts=32), dict(row_type=structs.NCCL_FLOAT32),
                       dict(fp8=True), dict(fp8_power_of_two=True)):
            other = CommSizing(**{**base.__dict__, **change})
            with self.assertRaisesRegex(ValueError, list(change)[0]):
                self.agree([base, other])

    def test_bad_vector(self):
        with self.assertRaises(ValueError):
            shapes.decode_sizing_max_reduced(shapes.plan_sizing(None, self.req), [1, 2, 3])


if __name__ == "__main__":
    unittest.main()
