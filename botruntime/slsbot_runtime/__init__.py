"""slsbot bot runtime: the trading stack each runtime pod (or local process) carries.

Layers, checked by import-linter: ``app`` (process wiring, HTTP server) → ``engine`` and ``backtest``
(the loop) → ``strategy``, ``features``, ``risk``, ``execution`` (decisions) → ``domain`` (plain types and
errors), with ``exchange``, ``data`` and ``persistence`` as adapters that depend only on ``domain``.
"""
