"""The promotion decision, one test per branch (a pure function: no MLflow, no data)."""

from ml import promotion
from ml.promotion import decide_promotion


def test_a_challenger_that_fails_the_majority_gate_is_refused_whatever_the_scores():
    decision = decide_promotion("3", 0.9, beats_majority=False, champion_version=None, champion_score=None)
    assert (decision.outcome, decision.promote) == (promotion.REFUSED, False)
    assert "majority-class baseline" in decision.reason


def test_the_champion_itself_is_already_the_champion():
    decision = decide_promotion("2", 0.5, beats_majority=True, champion_version="2", champion_score=None)
    assert (decision.outcome, decision.promote, decision.reason) == (
        promotion.ALREADY_CHAMPION,
        False,
        "already the champion",
    )


def test_without_a_champion_the_challenger_is_promoted():
    decision = decide_promotion("1", 0.4, beats_majority=True, champion_version=None, champion_score=None)
    assert (decision.outcome, decision.promote, decision.reason) == (
        promotion.NO_CHAMPION,
        True,
        "no champion yet",
    )


def test_a_champion_that_cannot_score_the_current_features_gives_way():
    decision = decide_promotion("4", 0.3, beats_majority=True, champion_version="2", champion_score=None)
    assert (decision.outcome, decision.promote) == (promotion.CHAMPION_CANNOT_SCORE, True)
    assert decision.reason == "champion 2 cannot score the current features"


def test_a_strictly_better_challenger_is_promoted():
    decision = decide_promotion("3", 0.5, beats_majority=True, champion_version="2", champion_score=0.4)
    assert (decision.outcome, decision.promote) == (promotion.BETTER, True)
    assert decision.reason == "macro_f1 0.5000 > champion's 0.4000"
    assert (decision.challenger_score, decision.champion_score) == (0.5, 0.4)


def test_a_worse_challenger_or_a_tie_keeps_the_champion():
    for score in (0.3, 0.4):
        decision = decide_promotion("3", score, beats_majority=True, champion_version="2", champion_score=0.4)
        assert (decision.outcome, decision.promote) == (promotion.NOT_BETTER, False)
        assert decision.reason == f"macro_f1 {score:.4f} <= champion's 0.4000"
