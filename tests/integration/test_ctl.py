"""bplab ctl says what happened in a sentence; --json keeps the consumer's reply."""

from __future__ import annotations

import json
import signal

import pytest

from lab.processes.net import free_port_block
from tests.conftest import wait_for

pytestmark = pytest.mark.integration


def test_ctl_prints_a_sentence_and_json_on_request(procs):
    port = str(free_port_block())
    consumer = procs.lab("consumer", "--module", "12", "--port", port, "--duration", "30")

    def ask(*args: str):
        ctl = procs.lab("ctl", *args, "--port", port)
        return ctl.wait(30), ctl

    wait_for(lambda: ask("status")[0] == 0, 20, "the consumer's control socket")
    code, ctl = ask("mode", "block")
    assert code == 0, ctl.stderr
    assert ctl.stdout.strip().startswith(f"consumer on port {port} took mode: now mode block")
    code, ctl = ask("status", "--json")
    assert code == 0 and json.loads(ctl.stdout)["mode"] == "block"
    consumer.signal(signal.SIGINT)
    assert consumer.wait(30) == 0


def test_demo_help_lists_every_key(procs):
    demo = procs.lab("demo", "--help")
    assert demo.wait(30) == 0
    text = " ".join(demo.stdout.split())
    for words in ("1-9 switch the consumer's mode", "+ and -", "k spikes", "q quits"):
        assert words in text, words
    # every module knob's keys (lab/ui/keys.py), Module 18's window and link delay among them
    for words in ("] and [", "the window (18)", "> and < raise and lower the link delay"):
        assert words in text, words
