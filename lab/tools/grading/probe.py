"""The probe's child process: ``python -m lab.tools.grading.probe NAME FILE SEED``.

The grader never imports the solver's file itself. This process loads it behind the plugin
guard (``lab.processes.plugins.Guard``), puts the challenge's made-up questions to fresh
instances, and prints one JSON object on stdout:

* ``{"status": "ok", "answers": {...}}``;
* ``{"status": "usage", "error": "..."}``: the file has no suitable class (a usage error);
* ``{"status": "failed", "error": "..."}``: the answers could not be used (for instance a
  limit that is not a number).

When the solver's code raises or hangs, the guard ends this process with its one line on
stderr (exit status ``plugins.EXIT_PLUGIN_FAILED``); :func:`run_probe` in the grader reads
that line, and kills this process if it outlives its timeout.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Dict, List

from lab.processes import plugins
from lab.tools.grading.challenges import find_challenge


def answer(name: str, path: str, seed: int) -> Dict[str, Any]:
    challenge = find_challenge(name)
    if challenge is None:
        return {"status": "usage", "error": f"unknown challenge {name!r}"}
    guard = plugins.Guard(path)
    try:
        cls = plugins.load_class(path, challenge.plugin_kind, guard)
    except plugins.PluginError as error:
        return {"status": "usage", "error": str(error)}
    if challenge.probe is None:
        return {"status": "ok", "answers": {}, "class": cls.__name__}
    methods = plugins.METHODS[challenge.plugin_kind]

    def make(offered: Dict[str, Any]) -> Any:
        return guard.wrap(plugins.build(cls, offered, guard), methods)

    try:
        answers = challenge.probe(make, challenge.plan(seed))
    except plugins.PluginError as error:
        return {"status": "usage", "error": str(error)}
    except (TypeError, ValueError, ZeroDivisionError, OverflowError) as error:
        text = f"{error.__class__.__name__}: {error}"
        return {"status": "failed", "error": f"your answers could not be used ({text})"}
    return {"status": "ok", "answers": answers, "class": cls.__name__}


def main(argv: List[str]) -> int:
    name, path, seed = argv
    print(json.dumps(answer(name, path, int(seed))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
