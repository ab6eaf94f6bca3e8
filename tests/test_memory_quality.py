"""The memory-quality benchmark's measures, exactly as issue #16 defines them (no models needed)."""

from __future__ import annotations

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
