"""Loading a person's own policy from a Python file (the exercises' way in), and guarding it.

``bplab consumer --policy-file my_policy.py`` runs the real consumer with the overflow policy
defined in that file; ``bplab producer --retry-file`` and ``--limiter-file`` do the same for
the producer's retry policy and rate limiter. The file is an ordinary Python module; the
loader picks the class by name if one is given (``file.py:ClassName``), otherwise the one
class in the file that has the right shape:

* an overflow policy is a subclass of :class:`lab.core.policies.OverflowPolicy`;
* a retry policy has ``delay(attempt, retry_after_s, now)`` returning seconds to wait, or
  None to give up (it may also have ``on_success(now)`` and ``on_failure(now)``);
* a limiter has ``take_up_to(now, count)`` and ``time_until(now)``, like
  :class:`lab.core.ratelimit.TokenBucket`;
* an autoscaler (the consumer's ``--autoscaler-file``) has ``decide(workers, lag_s, now)``
  returning the workers wanted, like :class:`lab.core.pool.LagAutoscaler`;
* a queue discipline (the consumer's ``--discipline-file``) has ``pick(queue, now)``
  returning ``(message, dropped)``, like :class:`lab.core.disciplines.DeadlineDrop`.

Classes are built with no arguments, or with the keyword arguments they accept among those
the process offers (for a consumer policy: capacity, process_rate, ...). Errors become a
:class:`PluginError` with one line a person can act on.

The person's code runs inside a lab process, so :func:`load` puts it behind a
:class:`Guard`. Loading the file, building the class and every call to its methods are
timed with a monotonic clock (the core never reads time itself). Whatever the code does:

* raises anything, ``SystemExit`` included: the process ends at once (exit status
  :data:`EXIT_PLUGIN_FAILED`) with one line on stderr naming the file and line (the last
  frame of the traceback in the person's file);
* does not return within :data:`CALL_TIMEOUT_S` (an endless loop, a long ``sleep``): a
  watchdog thread ends the process the same way, naming the method and the line it was on;
* hangs inside a C call that keeps the interpreter's lock (``sum(range(10**12))``, a huge
  ``10**10**8``), so that no Python thread runs, the watchdog among them: ``faulthandler``'s
  own C thread, armed by the watchdog while a call is running, dumps every thread's stack to
  stderr :data:`HANG_GRACE_S` after the watchdog's limit and ends the process; the grader
  reads the file and line from that dump (:func:`hang_from_dump`).

One environment variable is for ``bplab check`` only: ``BPLAB_PLUGIN_REPORT`` names a
JSON file where the guard writes, at exit, how often each method was called and how long
the calls took. :class:`MemoryPressure` is the consumer's hidden ``--memory-pressure``
(real memory pressure, provoked in a graded run).
"""

from __future__ import annotations

import atexit
import faulthandler
import importlib.util
import inspect
import json
import os
import re
import sys
import threading
import time
import traceback
from typing import Any, Callable, Dict, List, Optional, Tuple

from lab.core.policies import OverflowPolicy

CALL_TIMEOUT_S = 5.0  # no call of a policy may take this long: the loop it blocks is real
EXIT_PLUGIN_FAILED = 4
REPORT_ENV = "BPLAB_PLUGIN_REPORT"
WATCH_INTERVAL_S = 0.05
HANG_GRACE_S = 1.0  # past CALL_TIMEOUT_S: the watchdog itself could not run for this long
_GUARDS: List[Guard] = []  # every guard of this process: faulthandler has one timer
_BACKSTOP = {"armed": False}
_BACKSTOP_LOCK = threading.Lock()
_DUMP_FRAME = re.compile(r'^\s*File "(?P<file>.+)", line (?P<line>\d+) in (?P<name>\S+)')


class PluginError(Exception):
    """The file could not be loaded or has no suitable class; the message says why."""


class PluginCrash(PluginError):
    """The person's own code raised or hung (not a problem of the file's shape)."""


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


def _is_throttle(obj: Any) -> bool:
    return inspect.isclass(obj) and callable(getattr(obj, "update", None))


def _is_batcher(obj: Any) -> bool:
    return (
        inspect.isclass(obj)
        and callable(getattr(obj, "batch_size", None))
        and callable(getattr(obj, "observe", None))
    )


def _is_discipline(obj: Any) -> bool:
    return inspect.isclass(obj) and callable(getattr(obj, "pick", None)) and not _is_policy(obj)


def _is_autoscaler(obj: Any) -> bool:
    return inspect.isclass(obj) and callable(getattr(obj, "decide", None)) and not _is_policy(obj)


KINDS: Dict[str, Callable[[Any], bool]] = {
    "policy": _is_policy,
    "retry": _is_retry,
    "limiter": _is_limiter,
    "throttle": _is_throttle,
    "batcher": _is_batcher,
    "autoscaler": _is_autoscaler,
    "discipline": _is_discipline,
}
DESCRIPTIONS = {
    "policy": "a subclass of lab.core.policies.OverflowPolicy",
    "retry": "a class with delay(attempt, retry_after_s, now)",
    "limiter": "a class with take_up_to(now, count) and time_until(now)",
    "throttle": "a class with update(lag_s, lag_messages, now) returning a rate",
    "batcher": "a class with batch_size() and observe(size, duration_s, now)",
    "autoscaler": "a class with decide(workers, lag_s, now) returning a worker count",
    "discipline": "a class with pick(queue, now) returning (message, dropped)",
}
# The methods the processes call, per kind: these are the ones the guard times and watches.
METHODS: Dict[str, Tuple[str, ...]] = {
    "policy": ("decide", "on_full", "admission_limit", "observe", "status"),
    "retry": ("delay", "on_success", "on_failure"),
    "limiter": ("take_up_to", "time_until", "tokens"),
    "throttle": ("update",),
    "batcher": ("batch_size", "observe"),
    "autoscaler": ("decide",),
    "discipline": ("pick", "status"),
}


def where(error: BaseException, path: str) -> str:
    """``file.py line N`` of the last traceback frame in ``path`` (else the last frame)."""
    frames = traceback.extract_tb(error.__traceback__)
    return _frame_text(frames, path)


def _frame_text(frames: List[traceback.FrameSummary], path: str) -> str:
    target = os.path.abspath(path)
    own = [f for f in frames if os.path.abspath(f.filename) == target]
    frame = (own or frames or [None])[-1]
    if frame is None:
        return os.path.basename(path)
    return f"{os.path.basename(frame.filename)} line {frame.lineno}"


def describe(error: BaseException, path: str, during: str) -> str:
    """One line: what the person's code raised, where, and during which call."""
    text = str(error)
    name = error.__class__.__name__
    detail = f"{name}: {text}" if text else name
    return f"your code raised {detail} ({where(error, path)}, in {during})"


class Guard:
    """Times and watches every call into one person's file (see the module docstring)."""

    def __init__(self, path: str, timeout_s: float = CALL_TIMEOUT_S) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self.started = time.monotonic()
        self.calls: Dict[str, List[float]] = {}  # method -> [count, total s, slowest s]
        self._current: Optional[Tuple[str, float]] = None
        self._main = threading.get_ident()
        self._report = os.environ.get(REPORT_ENV) or None
        self._done = threading.Event()
        _GUARDS.append(self)
        threading.Thread(target=self._watch, name="plugin-watchdog", daemon=True).start()
        if self._report:
            atexit.register(self.write_report)

    def run(self, during: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``, timed and watched; a failure ends the process."""
        if self._current is not None:  # a method calling another: time the outer call only
            return self._call(during, fn, args, kwargs)
        begun = time.monotonic()
        with _BACKSTOP_LOCK:
            self._current = (during, begun)
            if not _BACKSTOP["armed"]:  # the call may never let the watchdog run again
                _set_backstop(True, self.timeout_s)
        try:
            return self._call(during, fn, args, kwargs)
        finally:
            self._current = None
            spent = time.monotonic() - begun
            stats = self.calls.setdefault(during, [0, 0.0, 0.0])
            stats[0] += 1
            stats[1] += spent
            stats[2] = max(stats[2], spent)

    def _call(self, during: str, fn: Callable[..., Any], args: Any, kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PluginError:
            raise
        except KeyboardInterrupt:
            raise  # Ctrl-C is the person's own wish to stop
        except BaseException as error:  # noqa: B036 (SystemExit too: it is their code's)
            self.fail(describe(error, self.path, during))

    def wrap(self, instance: Any, names: Tuple[str, ...]) -> Any:
        """Put every method in ``names`` behind the guard (instance attributes shadow the
        class's functions, so the core calls the guarded ones)."""
        for name in names:
            method = getattr(instance, name, None)
            if not callable(method):
                continue
            try:
                setattr(instance, name, self._guarded(f"{name}()", method))
            except AttributeError:  # __slots__ without __dict__, or a read-only property
                raise PluginError(
                    f"{type(instance).__name__} does not let the lab time its {name}(): "
                    "drop __slots__ (the lab needs each instance's __dict__)"
                ) from None
        return instance

    def _guarded(self, during: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(*args: Any, **kwargs: Any) -> Any:
            return self.run(during, method, *args, **kwargs)

        return guarded

    def fail(self, line: str) -> None:
        """Report, say the one line and end the process (from any thread)."""
        self.write_report(error=line)
        sys.stderr.write(f"error: {line}\n")
        sys.stderr.flush()
        os._exit(EXIT_PLUGIN_FAILED)

    def _watch(self) -> None:
        while not self._done.wait(WATCH_INTERVAL_S):
            _arm_backstop(self.timeout_s)
            current = self._current
            if current is None or time.monotonic() - current[1] < self.timeout_s:
                continue
            frame = sys._current_frames().get(self._main)
            frames = traceback.extract_stack(frame) if frame is not None else []
            self.fail(
                f"your code did not return within {self.timeout_s:g} s "
                f"(in {current[0]}, {_frame_text(frames, self.path)})"
            )

    def report(self, error: Optional[str] = None) -> Dict[str, Any]:
        calls = {
            name: {"calls": int(n), "total_s": total, "slowest_s": slowest}
            for name, (n, total, slowest) in self.calls.items()
        }
        return {
            "file": self.path,
            "wall_s": time.monotonic() - self.started,
            "calls": calls,
            "error": error,
        }

    def write_report(self, error: Optional[str] = None) -> None:
        if not self._report:
            return
        try:
            with open(self._report, "w", encoding="utf-8") as handle:
                json.dump(self.report(error), handle)
        except OSError:
            pass  # the grader will say the report is missing


def _arm_backstop(timeout_s: float) -> None:
    """While any guard's call runs, faulthandler's C timer is set (at the call's start, then
    again at every watchdog turn) to fire HANG_GRACE_S past the limit, so it fires only when
    the watchdog could not run at all (a C call holding the interpreter's lock)."""
    with _BACKSTOP_LOCK:
        busy = any(guard._current is not None for guard in _GUARDS)
        if busy or _BACKSTOP["armed"]:
            _set_backstop(busy, timeout_s)


def _set_backstop(on: bool, timeout_s: float) -> None:
    try:
        if on:
            faulthandler.dump_traceback_later(timeout_s + HANG_GRACE_S, exit=True, file=sys.stderr)
        else:
            faulthandler.cancel_dump_traceback_later()
    except (AttributeError, ValueError, OSError, RuntimeError):
        on = False  # stderr is no real file (a test's capture): the watchdog's line stands
    _BACKSTOP["armed"] = on


def _is_guard(path: str) -> bool:
    return os.path.basename(path) == os.path.basename(__file__)


def hang_from_dump(stderr: str, timeout_s: float = CALL_TIMEOUT_S) -> Optional[str]:
    """The one line for a process that faulthandler ended after a C call held the lock
    (``None`` if ``stderr`` holds no such dump): the solver's method is the frame just inside
    the guard's call, the line is the innermost frame in that method's file."""
    if "Timeout (" not in stderr:
        return None
    for block in re.split(r"^(?:Current thread|Thread) 0x", stderr, flags=re.M)[1:]:
        frames = [m.groupdict() for m in map(_DUMP_FRAME.match, block.splitlines()) if m]
        inside = [i for i, f in enumerate(frames) if f["name"] == "_call" and _is_guard(f["file"])]
        if not inside or inside[-1] == 0:
            continue
        outer = frames[inside[-1] - 1]  # the frames run from the innermost outwards
        line = next(f for f in frames if f["file"] == outer["file"])["line"]
        during = "loading the file" if outer["name"] == "<module>" else f"{outer['name']}()"
        where_text = f"{os.path.basename(outer['file'])} line {line}"
        return (
            f"your code did not return within {timeout_s:g} s (in {during}, {where_text}; "
            "stuck in one call that holds Python's lock)"
        )
    return None


class MemoryPressure:
    """Real memory pressure for a graded run: grow RSS to ``target_mb`` at ``at_s`` (seconds
    after it starts), let go after ``for_s``. The pages are written, so the OS counts them."""

    CHUNK = 8 * 2**20

    def __init__(self, at_s: float, target_mb: float, for_s: float) -> None:
        self.at_s, self.target_mb, self.for_s = at_s, target_mb, for_s

    def start(self) -> None:
        threading.Thread(target=self._run, name="memory-pressure", daemon=True).start()

    def _run(self) -> None:
        import psutil

        time.sleep(self.at_s)
        rss_mb = psutil.Process().memory_info().rss / 2**20
        size = max(0, int((self.target_mb - rss_mb) * 2**20))
        ballast = []
        # In chunks, letting go of the GIL between them: one big allocation would freeze
        # the process's loop for as long as it takes to write the pages.
        for _ in range(0, size, self.CHUNK):
            ballast.append(b"\x01" * self.CHUNK)
            time.sleep(0.0005)
        time.sleep(self.for_s)
        ballast.clear()


def load_class(spec: str, kind: str, guard: Optional[Guard] = None) -> type:
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
    _exec(loader_spec.loader, module, path, guard)
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


def _exec(loader: Any, module: Any, path: str, guard: Optional[Guard]) -> None:
    if guard is not None:
        guard.run("loading the file", loader.exec_module, module)
        return
    try:
        loader.exec_module(module)
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # noqa: B036 (the solver's code: any error is theirs)
        raise PluginCrash(
            f"{path} failed to load: {describe(error, path, 'loading the file')}"
        ) from None


def build(cls: type, offered: Optional[Dict[str, Any]] = None, guard: Optional[Guard] = None):
    """An instance, given the keyword arguments its constructor accepts among ``offered``."""
    offered = offered or {}
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        parameters = {}
    accepts_any = any(p.kind == p.VAR_KEYWORD for p in parameters.values())
    kwargs = {k: v for k, v in offered.items() if accepts_any or k in parameters}
    if guard is not None:
        return guard.run(f"{cls.__name__}(...)", cls, **kwargs)
    try:
        return cls(**kwargs)
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # noqa: B036
        path = inspect.getsourcefile(cls) or ""
        raise PluginCrash(
            f"{cls.__name__}(...) failed: {error.__class__.__name__}: {error} "
            f"({where(error, path)})"
        ) from None


def load(spec: str, kind: str, offered: Optional[Dict[str, Any]] = None) -> Any:
    """The person's object, built and guarded: a failure of their code ends the process
    with one line (see :class:`Guard`)."""
    guard = Guard(spec.partition(":")[0])
    instance = build(load_class(spec, kind, guard), offered, guard)
    return guard.wrap(instance, METHODS[kind])
