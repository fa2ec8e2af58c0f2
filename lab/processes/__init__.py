"""The imperative shell: the lab's processes and the ZeroMQ plumbing between them.

Each process is a thin loop around a core state machine (``lab.core``): read a socket, hand
the event to the core with ``now``, send what the core returns, publish telemetry. Ports,
socket options and friendly bind errors live in ``net``; clocks in ``clock``; stopping,
recording and summaries in ``runtime``; child processes in ``children``; loading a person's
own class from a file in ``plugins``.
"""
