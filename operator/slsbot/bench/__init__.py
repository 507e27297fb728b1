"""The control plane's benchmarks, printed by ``make bench`` after the runtime's (``slsbot_runtime.bench``), one
figure per line in the same ``name value target verdict`` form:

* ``python -m slsbot.bench.operator_scale``: the kopf operator against a Kubernetes API emulator, with 1,000
  Strategies;
* ``python -m slsbot.bench.fleet``: 20 paper bots under one ``slsbot up``.

Figures depend on the machine and on what else runs on it: each section prints the load average around it.
"""
