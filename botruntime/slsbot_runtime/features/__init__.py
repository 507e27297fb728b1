"""Features: the ``FeatureEngine`` (79 features in momentum, volatility, volume, statistical and calendar
families, vectorized and incremental) and the indicator primitives it shares with the strategy library."""
