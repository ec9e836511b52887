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


def test_a_gain_beyond_the_noise_is_said_so_and_recorded():
    decision = decide_promotion("3", 0.5, True, "2", 0.4, gain_interval=(0.02, 0.18))
    assert (decision.outcome, decision.promote, decision.beyond_noise) == (promotion.BETTER, True, True)
    assert decision.gain_interval == (0.02, 0.18)
    assert decision.reason == (
        "macro_f1 0.5000 > champion's 0.4000; gain +0.1000, 95% interval +0.0200 to +0.1800: beyond the noise"
    )


def test_a_strict_gain_within_the_noise_still_promotes_and_says_so():
    decision = decide_promotion("3", 0.41, True, "2", 0.4, gain_interval=(-0.03, 0.05))
    assert (decision.outcome, decision.promote, decision.beyond_noise) == (promotion.BETTER, True, False)
    assert decision.reason.endswith("gain +0.0100, 95% interval -0.0300 to +0.0500: within the noise")


def test_a_worse_challenger_keeps_the_champion_whatever_the_interval():
    decision = decide_promotion("3", 0.38, True, "2", 0.4, gain_interval=(-0.06, 0.01))
    assert (decision.outcome, decision.promote, decision.beyond_noise) == (promotion.NOT_BETTER, False, False)
    assert decision.reason == (
        "macro_f1 0.3800 <= champion's 0.4000; "
        "gain -0.0200, 95% interval -0.0600 to +0.0100: within the noise"
    )


def test_without_a_comparison_there_is_no_noise_verdict():
    for decision in (
        decide_promotion("1", 0.4, True, None, None),
        decide_promotion("4", 0.3, True, "2", None),
        decide_promotion("3", 0.5, True, "2", 0.4),
    ):
        assert decision.gain_interval is None and decision.beyond_noise is None
        assert "noise" not in decision.reason
