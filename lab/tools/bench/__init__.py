"""Measuring the lab: ``bplab bench`` (speed) and ``bplab validate`` (truth).

* ``theory`` is pure: queueing formulas, rate fits, error and ratio arithmetic, tables.
* ``harness`` runs real lab processes (consumer, producers, visualizers) on free loopback
  ports, watches their telemetry, and always tears them down.
* ``raw`` is the machine's baseline: plain pyzmq PUSH/PULL and a DEALER/ROUTER credit loop,
  two processes, no lab code on the data path.
* ``perf`` is the benchmark, ``validate`` the theory checks; ``docs/performance.md`` says
  what each number means and records the results.
"""
