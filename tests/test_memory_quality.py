"""The memory-quality benchmark's measures, exactly as issue #16 defines them, and the paired comparison the
speed benchmark gives int8 against fp32 (no models needed)."""

from __future__ import annotations

import pytest

from localmem.bench import metrics, speed
from localmem.bench.memory_quality import BM25, Found, Question, compare, found_in, rrf, score


def test_evidence_counts_a_source_and_answer_recall_ignores_stop_words() -> None:
    q = Question("c", "When did Caroline go to the group?", "7 May 2023", 2, frozenset({"D1:3"}))
    result = {"memory": "Caroline went to a support group", "metadata": {},
              "sources": [{"memory": "(8 May 2023) Caroline: I went yesterday (7 May 2023)",
                           "metadata": {"dia_id": "D1:3"}}]}
    found = found_in(result)
    assert found.labels == {"D1:3"}
    scored = score([q], [[found]])
    assert scored["all"] == {"questions": 1, "evidence_hit_at_5": 1.0, "answer_recall_at_5": 1.0,
                             "evidence_hits": "1"}
    missing = score([q], [[Found(frozenset({"D9:9"}), "on 7 June, the day")]])
    assert missing["2"]["evidence_hit_at_5"] == 0.0 and missing["2"]["answer_recall_at_5"] == 1 / 3


def test_only_the_top_five_count() -> None:
    q = Question("c", "q", "tennis", 4, frozenset({"D1:6"}))
    ranked = [Found(frozenset({f"D1:{i}"}), "x" if i < 6 else "tennis") for i in range(1, 7)]
    assert score([q], [ranked])["all"]["evidence_hit_at_5"] == 0.0
    assert score([q], [ranked[1:]])["all"]["answer_recall_at_5"] == 1.0


def test_bm25_and_rrf() -> None:
    bm25 = BM25(["the cat sat", "a dog ran far", "cat and dog"])
    scores = bm25.scores("cat")
    assert scores[0] > 0 and scores[2] > 0 and scores[1] == 0
    assert rrf([[0, 1, 2], [2, 0]]) == [0, 2, 1]


def test_two_runs_compare_question_by_question() -> None:
    def run(hits: str) -> dict[str, object]:
        return {"rows": {"infer=False": {"all": {"evidence_hits": hits}}},
                "infer_subset": {"rows": {"infer=True": {"all": {"evidence_hits": hits[:2]}}}}}

    table = compare(run("110100"), run("011110"))
    # 2 found only after (positions 2 and 4), 1 only before (position 0); p = 2 * (1 + 3) / 8 = 1.0
    assert table[2] == "| infer=False | 0.500 / 0.667 | 2 | 1 | 1.00 |"
    assert table[3] == "| infer=True (infer subset) | 1.000 / 0.500 | 0 | 1 | 1.00 |"
    assert compare(run("1" * 10), run("0" * 10))[2].endswith("| 0 | 10 | 0.00 |")  # 2 / 1024


def test_a_paired_comparison_gives_the_difference_its_interval_and_sign_test() -> None:
    before = [0.5] * 100
    after = [0.6] * 30 + [0.4] * 10 + [0.5] * 60  # better on 30 queries, worse on 10
    pair = metrics.paired(before, after)
    assert pair["queries"] == 100 and pair["after_better"] == 30 and pair["after_worse"] == 10
    assert pair["mean_difference"] == pytest.approx(0.02)
    assert pair["ci95_low"] < 0.02 < pair["ci95_high"] and pair["ci95_low"] > 0  # 30 against 10 is not chance
    assert pair["sign_test_p"] == pytest.approx(metrics.sign_test(30, 10)) and pair["sign_test_p"] < 0.01
    assert metrics.paired(before, before)["ci95_low"] == metrics.paired(before, before)["ci95_high"] == 0.0
    assert metrics.sign_test(0, 0) == 1.0 and metrics.sign_test(5, 5) == 1.0
    with pytest.raises(ValueError, match="at least one"):
        metrics.paired([], [])


def test_the_speed_report_shows_the_int8_comparison_query_by_query() -> None:
    means = {"scifact_ndcg_at_10": 0.6451, "locomo_hit_at_5": 0.4485, "scifact_all_claims_ndcg_at_10": 0.6561,
             "locomo_dated_hit_at_5": 0.4615}
    quality = {"scifact_queries": 300, "scifact_docs": 5183, "locomo_questions": 883,
               **{name: means for name in speed.BACKENDS},
               "int8_minus_fp32_scifact_ndcg_at_10": 0.0, "int8_minus_fp32_locomo_hit_at_5": 0.0,
               "int8_vs_fp32_paired": {"scifact": metrics.paired([0.5, 0.5, 0.5], [0.6, 0.5, 0.4]),
                                       "locomo_dated": metrics.paired([1.0, 0.0], [0.0, 0.0])}}
    text = speed.report({"command": "x", "machine": {}, "quality": quality})
    assert "| scifact | 3 | 0.6561 | 0.6561 | +0.0000 (" in text and "| 1 / 1 | 1.00 |" in text
    assert "| locomo_dated | 2 | 0.4615 | 0.4615 | -0.5000 (-1.0000 to +0.0000) | 0 / 1 | 1.00 |" in text
