"""Which configs the fast mode cannot reproduce exactly, and the error that says why.

Fast mode computes the decisions of a whole history at once, then only visits the candles where something
can happen (a decision that changes the target, an order resting on the book, a risk limit the equity reaches).
Everything the step mode does *on every candle* must therefore be vectorizable exactly, or provably inert where
fast mode skips it. That covers every library component, the three voting methods, the correlation penalty and
``minAgreement`` (``vectorized``), risk sizing from the signal track record (``fast_entries``), the volatility halt
(``volatility_mask``), and the circuit breaker, the loss limits and the kill switch (``risk_feed``).

What is left, named by ``static_blockers(config)`` before anything runs:

* an anomaly detector (``ml.models`` with ``role: anomaly``): it scores every candle and its live and vectorized
  scores agree to rounding only.

Found while the decisions are computed (``vectorized.batch_decisions``): a member without a vectorized form, a
member that reads feature-engine values. Found during the run, in the rare case it matters
(``fast_entries``): an entry sized by the ensemble's confidence to the last bit when signal models vote.

Each reason names the config field and what to do about it.
"""

from __future__ import annotations

from collections.abc import Sequence

from slsbot.api import RuntimeConfig
from slsbot.api.strategy import ModelRole
from slsbot_runtime.domain.errors import ConfigError


class FastModeUnavailable(ConfigError):
    """Fast mode cannot reproduce step mode for this config or this run. ``--mode fast`` exits 2 naming the
    reasons; ``--mode auto`` runs step mode instead and reports why."""

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons = tuple(reasons)
        super().__init__(f"fast mode cannot reproduce step mode here: {self.summary}; run --mode step or --mode auto")

    @property
    def summary(self) -> str:
        return "; ".join(self.reasons)


def static_blockers(config: RuntimeConfig) -> list[str]:
    """Why this config can never run in fast mode; empty when it may (the ensemble's members are checked when
    their decisions are computed: ``vectorized.batch_decisions``)."""
    reasons = []
    anomaly = [model for model in config.ml.models if model.role == ModelRole.ANOMALY]
    if anomaly:
        reasons.append(
            f"ml.models[{anomaly[0].name}]: the anomaly detector scores every candle, is refitted along the run and "
            "its score vetoes entries (risk.anomaly); its live and vectorized scores agree to rounding, not bit "
            "for bit, so a score at the threshold could fall differently, and scoring every candle live is most of "
            "the step mode's time: fast mode would be neither exact nor fast; run --mode step, or remove the model"
        )
    return reasons
