"""The CLI stays thin: each command parses, calls ``for_module`` and runs (its body about 30
lines at most; the signature is the option table, which grows with the curriculum), and its
help says what ``--rate`` means."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from lab.processes.consumer import ConsumerRun
from lab.processes.demo import DemoRun, child_argv
from lab.processes.producer import ProducerRun
from lab.ui import cli

CLI = Path(cli.__file__)


def test_no_command_does_more_than_parse_and_hand_over():
    tree = ast.parse(CLI.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            body_start = node.body[0].lineno
            assert node.end_lineno - body_start + 1 <= 30, node.name


def test_the_run_flags_are_the_run_options_fields():
    for role, run_class in (("consumer", ConsumerRun), ("producer", ProducerRun)):
        names = set(run_class.__dataclass_fields__)
        assert set(cli.RUN_FLAGS[role]) <= names, role


def test_producer_help_says_rate_is_seconds_between_messages(capsys):
    with pytest.raises(SystemExit):
        cli.main(["producer", "--help"])
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", capsys.readouterr().out).split())
    assert "SECONDS BETWEEN messages" in text and "0.05 = 20 msg/s" in text


def test_demo_passes_its_faults_and_producer_options_to_the_children():
    from lab.core.modules import get_module

    spec = get_module(14)
    run = DemoRun.for_module(spec, mps="max", stall_at=0.0, retry="backoff", breaker=False)
    consumer = child_argv("consumer", run)
    producer = child_argv("producer", run)
    # the factor and the stall length always go: the s and x keys use them too
    faults = ["--slowdown-factor", "4.0", "--stall-at", "0.0", "--stall-for", "3.0"]
    assert consumer[-6:] == faults
    assert producer[-5:] == ["--mps", "max", "--retry", "backoff", "--no-breaker"]
    assert run.port == spec.port


def test_run_options_take_the_module_port_and_check_theirs():
    from lab.core.modules import get_module

    assert ConsumerRun.for_module(get_module(13)).port == 13000
    with pytest.raises(ValueError, match="--port 70000 is out of range"):
        ProducerRun.for_module(get_module(12), port=70000)
    with pytest.raises(ValueError, match="--stall-for must be a finite number > 0"):
        ConsumerRun.for_module(get_module(12), stall_for=0.0)
