"""Whether a challenger becomes the champion: one pure function, one branch per case."""

from __future__ import annotations

from dataclasses import dataclass

#: The metric promotion compares, on the current test split.
PROMOTION_METRIC = "macro_f1"

REFUSED = "refused"  # fails the majority-class gate
ALREADY_CHAMPION = "already_champion"
NO_CHAMPION = "no_champion"
CHAMPION_CANNOT_SCORE = "champion_cannot_score"  # trained on another feature specification
BETTER = "better"
NOT_BETTER = "not_better"


@dataclass(frozen=True)
class PromotionDecision:
    outcome: str  # one of the constants above
    reason: str
    challenger_score: float
    champion_score: float | None = None

    @property
    def promote(self) -> bool:
        return self.outcome in (NO_CHAMPION, CHAMPION_CANNOT_SCORE, BETTER)


def decide_promotion(
    challenger_version: str,
    challenger_score: float,
    beats_majority: bool,
    champion_version: str | None,
    champion_score: float | None,
) -> PromotionDecision:
    """Promote a challenger that passed the majority-class gate when there is no champion,
    when the champion cannot score the current features (``champion_score`` None), or when
    it scores strictly better on the same test split; a tie keeps the champion.

    ``challenger_score`` and ``champion_score`` are ``PROMOTION_METRIC`` on the current test
    split; ``champion_score`` is not needed when the challenger is the champion already.
    """
    metric = PROMOTION_METRIC
    if not beats_majority:
        return PromotionDecision(
            REFUSED,
            f"version {challenger_version} does not beat the majority-class baseline on test {metric}",
            challenger_score,
        )
    if champion_version == challenger_version:
        return PromotionDecision(ALREADY_CHAMPION, "already the champion", challenger_score, challenger_score)
    if champion_version is None:
        return PromotionDecision(NO_CHAMPION, "no champion yet", challenger_score)
    if champion_score is None:
        return PromotionDecision(
            CHAMPION_CANNOT_SCORE,
            f"champion {champion_version} cannot score the current features",
            challenger_score,
        )
    if challenger_score > champion_score:
        return PromotionDecision(
            BETTER,
            f"{metric} {challenger_score:.4f} > champion's {champion_score:.4f}",
            challenger_score,
            champion_score,
        )
    return PromotionDecision(
        NOT_BETTER,
        f"{metric} {challenger_score:.4f} <= champion's {champion_score:.4f}",
        challenger_score,
        champion_score,
    )
