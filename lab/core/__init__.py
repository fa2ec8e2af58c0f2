"""The pure core: everything the lab knows about backpressure, with no I/O at all.

Rules of this package (``tests/unit/test_import_rules.py`` enforces them):

* no sockets, no sleeping, no clocks, no threads, no terminal and no plots: a core module
  imports nothing of zmq, socket, time, threading, rich, typer, psutil or matplotlib;
* a core module imports only the standard library and other core modules;
* every call that depends on time takes ``now``; randomness is handed in (a seeded
  ``random.Random`` or an id), never drawn from the operating system.

So every number the lab shows can be reproduced exactly in a unit test with a fake clock.
The shells around it (``lab.processes``, ``lab.ui``, ``lab.tools``) move bytes and draw.
"""
