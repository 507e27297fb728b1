"""Models as ensemble members: labels, purged splits, training, compiled predictors, the registry, the training
worker and the retrain schedule (see docs/concepts/models.md).

The package sits above ``strategy`` (its members implement the strategy component interface; the ensemble does
not know it holds models) and below ``engine`` and the wiring in ``app``.
"""
