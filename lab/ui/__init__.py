"""What a person sees and types: the dashboard, its panels, plots, keys and the CLI.

The dashboard and panels are pure functions of the telemetry snapshots they are given (no
sockets, ``now`` passed in); ``cli`` only parses flags and hands them to the shell.
"""
