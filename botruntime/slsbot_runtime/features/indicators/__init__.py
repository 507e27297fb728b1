"""Indicator primitives shared by the feature engine and the strategy library, so no strategy re-writes a
moving average. ``vectorized`` works on whole histories (backtests, fast mode); ``streaming`` updates one
observation at a time (live) and gives the same values."""
