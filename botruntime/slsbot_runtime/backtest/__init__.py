"""Backtests on the live code path: step mode runs the trading loop itself over a replay and the paper
exchange; fast mode computes the same trades from vectorized decisions and an event loop.

Entry point: ``slsbot_runtime.backtest.runner.run_backtest``. See docs/concepts/backtesting.md.
"""
