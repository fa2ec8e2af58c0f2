"""Loading a person's own policy from a Python file (the exercises' way in).

``bplab consumer --policy-file my_policy.py`` runs the real consumer with the overflow policy
defined in that file; ``bplab producer --retry-file`` and ``--limiter-file`` do the same for
the producer's retry policy and rate limiter. The file is an ordinary Python module; the
loader picks the class by name if one is given (``file.py:ClassName``), otherwise the one
class in the file that has the right shape:

* an overflow policy is a subclass of :class:`lab.core.policies.OverflowPolicy`;
* a retry policy has ``delay(attempt, retry_after_s, now)`` returning seconds to wait, or
  None to give up (it may also have ``on_success(now)`` and ``on_failure(now)``);
* a limiter has ``take_up_to(now, count)`` and ``time_until(now)``, like
  :class:`lab.core.ratelimit.TokenBucket`.

Classes are built with no arguments, or with the keyword arguments they accept among those
the process offers (for a consumer policy: capacity, process_rate, ...). Errors become a
:class:`PluginError` with one line a person can act on.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
from typing import Any, Callable, Dict, Optional

from lab.core.policies import OverflowPolicy


class PluginError(Exception):
    """The file could not be loaded or has no suitable class; the message says why."""


def _is_policy(obj: Any) -> bool:
    return inspect.isclass(obj) and issubclass(obj, OverflowPolicy) and obj is not OverflowPolicy


def _is_retry(obj: Any) -> bool:
    return inspect.isclass(obj) and callable(getattr(obj, "delay", None))


def _is_limiter(obj: Any) -> bool:
    return (
        inspect.isclass(obj)
        and callable(getattr(obj, "take_up_to", None))
        and callable(getattr(obj, "time_until", None))
    )


def _is_batcher(obj: Any) -> bool:
    return (
        inspect.isclass(obj)
        and callable(getattr(obj, "batch_size", None))
        and callable(getattr(obj, "observe", None))
    )


KINDS: Dict[str, Callable[[Any], bool]] = {
    "policy": _is_policy,
    "retry": _is_retry,
    "limiter": _is_limiter,
    "batcher": _is_batcher,
}
DESCRIPTIONS = {
    "policy": "a subclass of lab.core.policies.OverflowPolicy",
    "retry": "a class with delay(attempt, retry_after_s, now)",
    "limiter": "a class with take_up_to(now, count) and time_until(now)",
    "batcher": "a class with batch_size() and observe(size, duration_s, now)",
}


def load_class(spec: str, kind: str) -> type:
    """The class named by ``path.py`` or ``path.py:ClassName``."""
    path, _, name = spec.partition(":")
    if not os.path.isfile(path):
        raise PluginError(f"no such file: {path}")
    module_name = f"bplab_plugin_{abs(hash(os.path.abspath(path)))}"
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise PluginError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module
    try:
        loader_spec.loader.exec_module(module)
    except Exception as error:  # the solver's code: any error is theirs to see
        raise PluginError(f"{path} failed to load: {error.__class__.__name__}: {error}") from None
    fits = KINDS[kind]
    if name:
        cls = getattr(module, name, None)
        if cls is None or not fits(cls):
            raise PluginError(f"{path} has no {DESCRIPTIONS[kind]} named {name}")
        return cls
    own = [
        obj
        for obj in vars(module).values()
        if fits(obj) and getattr(obj, "__module__", None) == module_name
    ]
    if len(own) != 1:
        found = ", ".join(sorted(obj.__name__ for obj in own)) or "none"
        raise PluginError(
            f"{path} must define exactly one class that is {DESCRIPTIONS[kind]} (found: {found}); "
            f"or name it: {path}:ClassName"
        )
    return own[0]


def build(cls: type, offered: Optional[Dict[str, Any]] = None) -> Any:
    """An instance, given the keyword arguments its constructor accepts among ``offered``."""
    offered = offered or {}
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        parameters = {}
    accepts_any = any(p.kind == p.VAR_KEYWORD for p in parameters.values())
    kwargs = {k: v for k, v in offered.items() if accepts_any or k in parameters}
    try:
        return cls(**kwargs)
    except Exception as error:
        raise PluginError(
            f"{cls.__name__}(...) failed: {error.__class__.__name__}: {error}"
        ) from None


def load(spec: str, kind: str, offered: Optional[Dict[str, Any]] = None) -> Any:
    return build(load_class(spec, kind), offered)
