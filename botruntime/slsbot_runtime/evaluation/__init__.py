"""Honest evaluation of a RuntimeConfig: walk-forward out-of-sample backtests of the ensemble, each member alone and
buy-and-hold, a lookahead check, the deflated Sharpe ratio and the probability of backtest overfitting, and a
record that makes the run reproducible. See docs/concepts/evaluation.md."""
