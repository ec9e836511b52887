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
    #: 95% interval of (challenger - champion) from a paired bootstrap over the test
    #: accidents, when both were scored.
    gain_interval: tuple[float, float] | None = None

    @property
    def promote(self) -> bool:
        return self.outcome in (NO_CHAMPION, CHAMPION_CANNOT_SCORE, BETTER)

    @property
    def beyond_noise(self) -> bool | None:
        """Whether the gain's interval lies wholly above 0 (None: nothing was compared). A
        strict gain within the noise still promotes: the flag says how much it means."""
        return None if self.gain_interval is None else self.gain_interval[0] > 0


def _noise(challenger_score: float, champion_score: float, interval: tuple[float, float] | None) -> str:
    if interval is None:
        return ""
    low, high = interval
    verdict = "beyond the noise" if low > 0 else "within the noise"
    return (
        f"; gain {challenger_score - champion_score:+.4f}, 95% interval {low:+.4f} to {high:+.4f}: {verdict}"
    )


def decide_promotion(
    challenger_version: str,
    challenger_score: float,
    beats_majority: bool,
    champion_version: str | None,
    champion_score: float | None,
    gain_interval: tuple[float, float] | None = None,
) -> PromotionDecision:
    """Promote a challenger that passed the majority-class gate when there is no champion,
    when the champion cannot score the current features (``champion_score`` None), or when
    it scores strictly better on the same test split; a tie keeps the champion.

    ``challenger_score`` and ``champion_score`` are ``PROMOTION_METRIC`` on the current test
    split; ``champion_score`` is not needed when the challenger is the champion already.
    ``gain_interval``, the bootstrap interval of their difference, does not change the
    outcome: it is recorded, and the reason says whether the gain is beyond the noise.
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
    noise = _noise(challenger_score, champion_score, gain_interval)
    if challenger_score > champion_score:
        return PromotionDecision(
            BETTER,
            f"{metric} {challenger_score:.4f} > champion's {champion_score:.4f}{noise}",
            challenger_score,
            champion_score,
            gain_interval,
        )
    return PromotionDecision(
        NOT_BETTER,
        f"{metric} {challenger_score:.4f} <= champion's {champion_score:.4f}{noise}",
        challenger_score,
        champion_score,
        gain_interval,
    )
