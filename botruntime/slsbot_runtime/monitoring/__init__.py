"""Monitoring the market and the models: the anomaly detector (an isolation forest over market-state features,
``monitoring.anomaly``) and drift (population stability and the two-sample Kolmogorov-Smirnov test against a
model's training window, ``monitoring.drift``). Pure: no I/O, no clock; time comes in as candle timestamps.
See docs/concepts/monitoring.md."""
