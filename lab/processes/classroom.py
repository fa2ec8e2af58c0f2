"""Classroom mode: the instructor's consumer on the projector, every attendee a producer.

``bplab classroom N`` (or ``--classroom`` on the consumer and the demo) runs the module's
consumer with CURVE on every socket (``security.py``), prints a join code and the one
command attendees type, and shows the instructor's dashboard with the producers table.
``bplab join CODE`` runs a producer with the module's defaults against it.

Also here: the rule that a consumer bound to anything but loopback must be a classroom
(CURVE) or be told ``--insecure``, because its plain sockets would take data and control
commands from anyone on the network.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from lab.core import joincode
from lab.processes import security
from lab.processes.producer import ProducerProcess, report_producer, run_producer
from lab.processes.runtime import say
from lab.ui import classroom_panel

ANY_ADDRESS = ("0.0.0.0", "::")
# bplab classroom's --per-producer-limit unless told: without a cap, in block mode, the first
# attendee to join is granted the whole buffer as credit and, at a low rate, holds it for
# many seconds while later ones wait (seen in the 40-producer simulation of the panel test).
DEFAULT_SHARE_CAP = 0.1


class BindRefused(Exception):
    """A non-loopback bind without CURVE or ``--insecure`` (one line saying why)."""


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything, so it is not trusted as loopback


def check_bind(address: str, classroom: bool, insecure: bool) -> None:
    """Refuse to expose plain sockets: raise :class:`BindRefused` unless that is safe or asked."""
    if not _is_ip(address) and address != "localhost":
        # A name could resolve to any address: the rule below holds only for IP addresses.
        raise BindRefused(
            f"--bind {address!r} is not an address: --bind takes an IP address of this "
            "machine, e.g. 127.0.0.1, or 0.0.0.0 for all"
        )
    if is_loopback(address) or classroom or insecure:
        return
    raise BindRefused(
        f"--bind {address} would expose unauthenticated data and control sockets to the "
        "network; use --classroom (CURVE, join codes) or add --insecure if you mean it"
    )


def _is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return False
    return True


def lan_address() -> str:
    """This machine's address on the network its default route uses (no packet is sent)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: routed like the internet, never reached
        return probe.getsockname()[0]
    except OSError:
        return "127.0.0.1"
    finally:
        probe.close()


def advertised_host(bind: str) -> str:
    """The address to put in the join code: the bind address, or the LAN one for 0.0.0.0."""
    return lan_address() if bind in ANY_ADDRESS else bind


def local_host(bind: str) -> str:
    """Where the instructor's own dashboard and keys connect."""
    return "127.0.0.1" if bind in ANY_ADDRESS else bind


def make_join_code(keys: security.RoomKeys, host: str, port: int) -> str:
    return joincode.encode(joincode.JoinCode(host, port, keys.server_key_raw()))


def consumer_args(key_file: str, bind: str, per_producer_limit: Optional[float]) -> List[str]:
    """The flags that make a consumer child a classroom consumer."""
    args = ["--classroom", "--key-file", key_file, "--bind", bind]
    if per_producer_limit is not None:
        args += ["--per-producer-limit", repr(per_producer_limit)]
    return args


def join_target(code: str) -> Tuple[str, int, security.ClientKeys]:
    """Host, base port and fresh client keys from a join code (``JoinCodeError`` if bad)."""
    decoded = joincode.decode(code)
    return decoded.host, decoded.port, security.ClientKeys.from_raw_server_key(decoded.server_key)


@dataclass
class ClassroomRun:
    module: int
    port: int
    bind: str
    key_file: Optional[str] = None
    mode: Optional[str] = None
    duration: Optional[float] = None
    per_producer_limit: Optional[float] = None
    plain: bool = False
    json_out: bool = False
    local_producer: bool = False  # the demo with --classroom: one producer of the room's own
    mps: Optional[float] = None
    record: Optional[str] = None
    extra_consumer_args: List[str] = field(default_factory=list)  # the demo's fault flags
    extra_producer_args: List[str] = field(default_factory=list)  # and its producer's


def run_classroom(run: ClassroomRun) -> int:
    """Print the join code, then run the consumer and the instructor's dashboard."""
    from lab.processes.demo import DemoRun, run_demo

    key_file = str(run.key_file or security.default_key_file())
    keys = security.load_or_create(key_file)
    host = advertised_host(run.bind)
    code = make_join_code(keys, host, run.port)
    announce(code, host, run.port, key_file)
    local = local_host(run.bind)
    share_cap = DEFAULT_SHARE_CAP if run.per_producer_limit is None else run.per_producer_limit
    producer_args: List[str] = []
    if run.local_producer:
        producer_args = ["--host", local, "--server-key", keys.server_public.decode("ascii")]
        producer_args += run.extra_producer_args
    demo = DemoRun(
        module=run.module,
        port=run.port,
        mode=run.mode,
        duration=run.duration,
        mps=run.mps,
        plain=run.plain,
        json_out=run.json_out,
        record=run.record,
        extra_consumer_args=consumer_args(key_file, run.bind, share_cap) + run.extra_consumer_args,
        extra_producer_args=producer_args,
        host=local,
        control_keys=security.ClientKeys.instructor(keys),
        with_producer=run.local_producer,
        banner=f"attendees type:  bplab join {code}",
    )
    return run_demo(demo)


def announce(code: str, host: str, port: int, key_file: str) -> None:
    say(f"classroom: listening on {host}, ports {port}..{port + 3} (CURVE on every socket)")
    say(f"classroom: keys in {key_file} (the secret key stays on this machine)")
    say("classroom: attendees type:")
    say(f"    bplab join {code}")


# -- flag checks for the CLI (each raises ValueError with one line) -----------------------------
def consumer_keys(
    bind: str, classroom: bool, insecure: bool, key_file: Optional[str]
) -> Optional[security.RoomKeys]:
    """The room's keys for a consumer started with these flags (None: plain sockets)."""
    try:
        check_bind(bind, classroom, insecure)
        if not classroom:
            return None
        return security.load_or_create(key_file)
    except (BindRefused, security.KeyFileError) as error:
        raise ValueError(str(error)) from None


def check_share_cap(value: Optional[float], classroom: bool) -> Optional[float]:
    if value is None:
        return None
    if not classroom:
        raise ValueError("--per-producer-limit is a classroom setting: add --classroom")
    if not 0.0 < value <= 1.0:
        raise ValueError(
            f"--per-producer-limit is the fraction of the buffer one producer may hold, "
            f"above 0 and at most 1, got {value}"
        )
    return value


def producer_keys(server_key: Optional[str]) -> Optional[security.ClientKeys]:
    """Client keys for ``--server-key`` (the z85 public key of a classroom consumer)."""
    if server_key is None:
        return None
    from zmq.utils import z85

    try:
        raw = z85.decode(server_key.encode("ascii"))
    except (ValueError, UnicodeEncodeError, KeyError, TypeError):
        raw = b""
    if len(raw) != 32:
        raise ValueError("--server-key takes the 40-character z85 public key of the consumer")
    return security.ClientKeys.fresh(server_key.encode("ascii"))


def instructor_keys(key_file: Optional[str]) -> security.ClientKeys:
    """``bplab ctl --classroom``: the instructor's client keys from the existing key file."""
    try:
        return security.ClientKeys.instructor(security.load(key_file))
    except security.KeyFileError as error:
        raise ValueError(str(error)) from None


# -- the attendee's side (bplab join) ----------------------------------------------------------
ATTENDEE_REDRAW_S = 0.5


class AttendeeProducer(ProducerProcess):
    """A producer that also draws its own small dashboard (``classroom_panel.attendee_lines``)
    from its core, in its own loop: no telemetry subscription, because forty attendees each
    reading the whole room's telemetry would be several MB/s on the classroom's Wi-Fi."""

    def __init__(self, config, run, show) -> None:
        super().__init__(config, run)
        self._show = show
        self._next_draw = 0.0

    def _publish(self, now: float) -> None:
        super()._publish(now)
        if now >= self._next_draw:
            self._next_draw = now + ATTENDEE_REDRAW_S
            snapshot = self.core.snapshot(now, self.stats.rss_mb, self.stats.cpu_pct)
            self._show(classroom_panel.attendee_lines(snapshot, self.core.window))


def run_attendee(config, run) -> int:
    """``bplab join``: the producer, with the attendee's view on a terminal."""
    from rich.console import Console, Group
    from rich.live import Live

    console = Console()
    if run.quiet or not console.is_terminal:
        return run_producer(config, run)
    with Live(console=console, auto_refresh=False, transient=False) as live:
        process = AttendeeProducer(
            config, run, lambda lines: live.update(Group(*lines), refresh=True)
        )
        process.stop.install()
        try:
            summary = process.serve()
        finally:
            process.close()
    report_producer(summary, run)
    return 0
