"""Classroom security: CURVE keys, the ZAP handler that authorises them, refusals counted.

In classroom mode every socket the consumer binds is a CURVE server. Two key pairs live in
one file on the instructor's machine (created on first start, mode 0600, reused after):

* the *server* pair: its public key goes into the join code; its secret key never leaves
  the file (nothing prints it, and the join code holds the public key only);
* the *instructor* pair: the only client key allowed on the control socket (``bplab ctl``
  and the classroom's keys load it from the same file).

Attendees' producers make a fresh client key pair each run: any CURVE client that knows the
server key may send data and read telemetry. Authorisation is ZeroMQ's ZAP, run by pyzmq's
:class:`~zmq.auth.thread.ThreadAuthenticator` with one credentials callback per ZAP domain
(``data``, ``telemetry``, ``control``); so control.py never sees a non-instructor request.

Every refused handshake is counted, by socket and by reason, from each server socket's
monitor: a key the ZAP handler refused (``unauthorised``), a client with the wrong server
key (``wrong_key``: the server cannot open its HELLO), and a client without CURVE
(``plaintext``). A refusal closes that one connection; the consumer carries on.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import zmq
from zmq.utils import z85

DATA = "data"
TELEMETRY = "telemetry"
CONTROL = "control"
DOMAINS = (DATA, TELEMETRY, CONTROL)
REASONS = ("unauthorised", "wrong_key", "plaintext", "other")
KEY_FILE_KIND = "bplab classroom keys"

_MONITORED = (
    zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)


class KeyFileError(Exception):
    """The key file exists but is not one this lab wrote (the message says what to do)."""


@dataclass(frozen=True)
class RoomKeys:
    """The instructor's two CURVE key pairs, z85-encoded (40 characters each)."""

    server_public: bytes
    server_secret: bytes
    instructor_public: bytes
    instructor_secret: bytes

    def server_key_raw(self) -> bytes:
        return z85.decode(self.server_public)


@dataclass(frozen=True)
class ClientKeys:
    """What a CURVE client needs: the server's public key and a key pair of its own."""

    server_public: bytes
    public: bytes
    secret: bytes

    @classmethod
    def fresh(cls, server_public: bytes) -> ClientKeys:
        """An attendee's producer: a new key pair each run (any CURVE client may send data)."""
        public, secret = zmq.curve_keypair()
        return cls(server_public, public, secret)

    @classmethod
    def instructor(cls, keys: RoomKeys) -> ClientKeys:
        return cls(keys.server_public, keys.instructor_public, keys.instructor_secret)

    @classmethod
    def from_raw_server_key(cls, raw: bytes) -> ClientKeys:
        return cls.fresh(z85.encode(raw))


def default_key_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "bplab" / "classroom-keys.json"


def load_or_create(path: Optional[os.PathLike] = None) -> RoomKeys:
    """The keys in ``path``, made (readable by this user only) if the file is not there."""
    target = Path(path) if path is not None else default_key_file()
    if target.exists():
        return _load(target)
    server_public, server_secret = zmq.curve_keypair()
    instructor_public, instructor_secret = zmq.curve_keypair()
    keys = RoomKeys(server_public, server_secret, instructor_public, instructor_secret)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    body = {"kind": KEY_FILE_KIND, "version": 1}
    body.update({name: value.decode("ascii") for name, value in keys.__dict__.items()})
    # O_EXCL: two classrooms started at once must not each write half a file.
    fd = os.open(str(target), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(body, out, indent=1)
    return keys


def load(path: Optional[os.PathLike] = None) -> RoomKeys:
    """The keys of an existing file (``bplab ctl --classroom``: never makes new ones)."""
    target = Path(path) if path is not None else default_key_file()
    if not target.exists():
        raise KeyFileError(f"no classroom key file at {target}: start bplab classroom first")
    return _load(target)


def _load(target: Path) -> RoomKeys:
    if os.name != "nt" and target.stat().st_mode & 0o077:
        raise KeyFileError(
            f"{target} holds the classroom's secret keys but other users may read it: "
            f"chmod 600 {target} (or delete it: new keys mean a new join code)"
        )
    try:
        body = json.loads(target.read_text())
        if body.get("kind") != KEY_FILE_KIND:
            raise ValueError("not a key file")
        keys = RoomKeys(*(body[name].encode("ascii") for name in RoomKeys.__dataclass_fields__))
        for value in keys.__dict__.values():
            if len(z85.decode(value)) != 32:
                raise ValueError("a key is not 32 bytes")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise KeyFileError(
            f"{target} is not a classroom key file this lab wrote ({error}); move it away "
            "or pass --key-file with another path"
        ) from None
    return keys


def routing_id(name: str, keys: Optional[ClientKeys]) -> bytes:
    """The DEALER's identity at the consumer's ROUTER. Plain: the name, as always. In a
    classroom two attendees may pick the same ``--name`` (or two laptops the same pid), and
    with ROUTER_HANDOVER the second would take over the first's connection; so the name is
    followed by the start of this run's own public key. The dashboard shows the name the
    producer's HELLO gives, not this."""
    if keys is None:
        return name.encode()[:255]
    return name.encode()[:200] + b"~" + keys.public[:12]


def secure_client(sock: zmq.Socket, keys: Optional[ClientKeys]) -> None:
    """Make ``sock`` a CURVE client of the server ``keys`` names (before it connects)."""
    if keys is None:
        return
    sock.curve_serverkey = keys.server_public
    sock.curve_publickey = keys.public
    sock.curve_secretkey = keys.secret


class _DomainPolicy:
    """ZAP credentials callback of one domain: control takes the instructor's key only."""

    def __init__(self, guard: ServerGuard, domain: str) -> None:
        self.guard = guard
        self.domain = domain

    def callback(self, domain: str, key: bytes) -> bool:
        if self.domain != CONTROL:
            return True
        return key == self.guard.keys.instructor_public


class ServerGuard:
    """The consumer's side: makes its sockets CURVE servers and counts what it refuses."""

    def __init__(self, ctx: zmq.Context, keys: RoomKeys) -> None:
        self.keys = keys
        # Imported here: both bring asyncio, which a process outside a classroom never needs.
        from zmq.auth.thread import ThreadAuthenticator
        from zmq.utils.monitor import recv_monitor_message

        self._read_event = recv_monitor_message

        self.refused: Dict[str, Dict[str, int]] = {d: dict.fromkeys(REASONS, 0) for d in DOMAINS}
        self.authenticator = ThreadAuthenticator(ctx)
        self.authenticator.start()
        for domain in DOMAINS:
            self.authenticator.configure_curve_callback(domain, _DomainPolicy(self, domain))
        self._monitors: List[Tuple[str, zmq.Socket, zmq.Socket]] = []

    def secure(self, sock: zmq.Socket, domain: str) -> None:
        """Before ``bind``: CURVE server with the room's key, authorised in ``domain``."""
        sock.curve_server = True
        sock.curve_publickey = self.keys.server_public
        sock.curve_secretkey = self.keys.server_secret
        sock.zap_domain = domain.encode()
        self._monitors.append((domain, sock, sock.get_monitor_socket(_MONITORED)))

    def poll(self) -> None:
        """Read the monitors: every refused handshake since the last call, counted."""
        for domain, _, monitor in self._monitors:
            for _ in range(1000):
                try:
                    event = self._read_event(monitor, zmq.NOBLOCK)
                except zmq.Again:
                    break
                self.refused[domain][_reason(event["event"], event["value"])] += 1

    def status(self) -> Dict[str, object]:
        """For the snapshot: refusals by domain and reason, and their total."""
        self.poll()
        return {
            "refused": {d: dict(r) for d, r in self.refused.items()},
            "refused_total": sum(sum(r.values()) for r in self.refused.values()),
        }

    def close(self) -> None:
        for _, sock, monitor in self._monitors:
            try:
                sock.disable_monitor()
            except zmq.ZMQError:
                pass
            monitor.close(linger=0)
        self._monitors = []
        self.authenticator.stop()


def _reason(event: int, value: int) -> str:
    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        return "unauthorised"
    if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
        if value == zmq.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
            return "wrong_key"
        if value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
            return "plaintext"
    return "other"
