"""Tools around the lab: the benchmarks (``bench``), the graders (``grading``) and the
simulator that runs the cores together without sockets (``sim``)."""
