"""Backpressure Lab: watch a fast producer overload a slow consumer over ZeroMQ, then fix it.

The package is split the way h11 splits a protocol library:

* the **core** (``buffer``, ``policies``, ``pacing``, ``service``, ``metrics``, ``accounting``,
  ``protocol``, ``consumer_core``, ``producer_core``) is pure code. It never touches a socket,
  never sleeps and never reads the wall clock: every call takes ``now``.
* the **shell** (``consumer``, ``producer``, ``visualizer``, ``dashboard``, ``demo``, ``cli``)
  moves bytes between ZeroMQ sockets and the core, and draws what the core reports.
"""

__version__ = "0.1.0"
