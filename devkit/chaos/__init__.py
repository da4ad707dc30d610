"""Chaos experiments on the embedded platform: faults injected into real components (processes killed,
the broker crashed, the AWS endpoint frozen, network and clock faults), each experiment ending with
``dataforge reconcile`` exact and silver and gold equal to an independent KPI computation.

- :mod:`devkit.chaos.harness`: the shared harness (``platform()``, ``ChaosPlatform``, ``Outcome``, ``Verdict``);
- :mod:`devkit.chaos.worker`: ``python -m devkit.chaos.worker mapping|streaming``, the parts the
  experiments kill, each in a process of its own;
- ``devkit.chaos.experiments_<area>``: the experiments of one area, registered in its ``EXPERIMENTS``
  dict (``bench/recovery.py`` runs them all, ``tests/chaos/`` asserts their verdicts).
"""
