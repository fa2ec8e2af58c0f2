"""Every command a lesson tells someone to type still works, and every table still holds.

The first half reads each ```bash block of every lesson and of the README and checks that
each command resolves from the repository root right after the README's install command:
scripts exist, and ``bplab`` subcommands and flags are accepted by the real typer app (its click)
(parsed, never run). A renamed flag or a moved script fails here. The second half runs
``scripts/check_lessons.py --quick``: a stale table fails here.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import pytest
import typer

from lab.core.modes import MODES
from lab.core.producer_core import RETRY_POLICIES
from lab.core.ratelimit import LIMITERS
from lab.ui.cli import TRANSPORT_MODE, UsageError, app

REPO = Path(__file__).resolve().parent.parent
DOCUMENTS = [REPO / "README.md", *sorted(REPO.glob("workshop_materials/*/README.md"))]
INSTALL = "python3 -m venv .venv && .venv/bin/python -m pip install -e ."
# Commands that are not the lab's: the install and test steps the README itself gives.
KNOWN = {
    ("python3", "-m", "venv", ".venv"),
    (".venv/bin/python", "-m", "pip", "install", "-e", "."),
    (".venv/bin/python", "-m", "pip", "install", "-e", ".[test]"),
    (".venv/bin/python", "-m", "pip", "install", "-e", ".[broker]"),  # Module 20's extra
    (".venv/bin/python", "-m", "pytest"),
    ("source", ".venv/bin/activate"),
}


# --mode transport is Module 18's PUSH/PULL pair, outside the policy modes (lab.ui.cli)
CHOICES = {
    "mode": (*MODES, TRANSPORT_MODE),
    "retry": tuple(RETRY_POLICIES),
    "limit": tuple(LIMITERS),
}


def lesson_commands() -> List[Tuple[str, str]]:
    """(document, command) for every command of every ```bash block, ``&&`` chains split."""
    found = []
    for path in DOCUMENTS:
        text = path.read_text(encoding="utf-8")
        for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
            for line in block.splitlines():
                line = line.split(" #")[0].strip()
                for command in filter(None, (part.strip() for part in line.split("&&"))):
                    found.append((str(path.relative_to(REPO)), command))
    return found


COMMANDS = lesson_commands()


def _parse_bplab(args: List[str]) -> None:
    """Parse ``bplab ARGS`` with the real app, down to the subcommand, without running it."""
    group = typer.main.get_command(app)
    with group.make_context("bplab", list(args), resilient_parsing=False) as ctx:
        # click keeps the subcommand's words in protected_args (_protected_args from 8.2)
        protected = getattr(ctx, "_protected_args", None)
        if protected is None:
            protected = ctx.protected_args
        rest = [*protected, *ctx.args]
        assert rest, "bplab with no subcommand"
        name, command, sub_args = group.resolve_command(ctx, rest)
        with command.make_context(name, sub_args, parent=ctx) as sub:
            _check_choices(sub.params)


def _check_choices(params) -> None:
    """The word-valued flags the CLI checks in its body, checked here without running it."""
    for flag, allowed in CHOICES.items():
        value = params.get(flag)
        if value is not None and value not in allowed:
            raise AssertionError(f"--{flag.replace('_', '-')} {value}: not one of {allowed}")


def _script_role(script: Path) -> Tuple[int, str]:
    match = re.search(r'launch\((\d+), "(\w+)"\)', script.read_text(encoding="utf-8"))
    assert match, f"{script} does not call launch(module, role)"
    return int(match.group(1)), match.group(2)


def resolve(command: str) -> None:
    """Raise AssertionError or a UsageError unless ``command`` would start as written."""
    words = shlex.split(command)
    if tuple(words) in KNOWN:
        return
    program, args = words[0], words[1:]
    if program == "bplab":
        raise AssertionError(
            "bare `bplab` is not on PATH after the install command: write .venv/bin/bplab"
        )
    if program == ".venv/bin/bplab":
        _parse_bplab(args)
        return
    assert program in ("python3", ".venv/bin/python"), f"unknown program {program!r}"
    script = REPO / args[0]
    assert script.is_file(), f"no such script: {args[0]}"
    if script.parent.parent.name == "workshop_materials":
        module, role = _script_role(script)
        _parse_bplab([role, "--module", str(module), *args[1:]])


def test_the_lessons_have_commands_to_check():
    documents = {document for document, _ in COMMANDS}
    assert len(documents) == len(DOCUMENTS) and len(COMMANDS) > 40


@pytest.mark.parametrize("document,command", COMMANDS, ids=[c for _, c in COMMANDS])
def test_every_lesson_command_resolves(document, command):
    try:
        resolve(command)
    except typer.Exit as done:  # --help and friends end parsing cleanly
        assert done.exit_code == 0
    except UsageError as error:
        pytest.fail(f"{document}: `{command}`: {error.format_message()}")


def test_every_lesson_starts_with_the_install_or_says_how():
    for path in DOCUMENTS[1:]:
        text = path.read_text(encoding="utf-8")
        top = text.split("\n## ", 1)[0]
        assert INSTALL in top and ".venv/bin/bplab" in top, f"{path}: no how-to-run line on top"


def test_a_renamed_flag_or_a_missing_script_is_caught():
    with pytest.raises(UsageError):
        resolve(".venv/bin/bplab consumer --module 14 --no-such-flag")
    with pytest.raises(UsageError):
        resolve("python3 workshop_materials/14_rate_limiting/producer.py --limits interval")
    with pytest.raises(AssertionError):
        resolve("python3 workshop_materials/14_rate_limiting/no_such_script.py")
    with pytest.raises(AssertionError):
        resolve("bplab demo 14")
    with pytest.raises(AssertionError):
        resolve(".venv/bin/bplab consumer --module 13 --mode M --until-idle --json")


def test_two_terminal_measurements_end_with_the_producer():
    """A consumer given --json in a lesson stops by --until-idle, never by a guessed duration."""
    for document, command in COMMANDS:
        if re.search(r"consumer(\.py)? .*--json", command):
            assert "--until-idle" in command and "--duration" not in command, (document, command)


def test_until_idle_ends_the_consumer_once_its_producer_has_left(procs, base_port):
    """The recipes' promise: the producer's stop ends the measurement, and all it sent counts."""
    port = str(base_port)
    consumer = procs.lab("consumer", "--port", port, "--until-idle", "--json", "--quiet")
    producer = procs.lab(
        "producer", "--port", port, "--mps", "40", "--duration", "1.5", "--json", "--quiet"
    )
    assert producer.wait(30) == 0
    assert consumer.wait(30) == 0  # it stops by itself: no --duration, no signal
    sent, summary = producer.json(), consumer.json()
    assert summary["stop_reason"] == "producers left"
    assert [row["received"] for row in summary["producers"].values()] == [sent["produced"]]
    assert summary["depth"] == 0 and summary["processed"] == summary["accepted"]


def _check_lessons():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import check_lessons
    finally:
        sys.path.pop(0)
    return check_lessons


def test_every_figure_of_the_check_is_found_in_its_lesson():
    """No run needed: each listed figure names exactly one cell, and the cell has a number."""
    check = _check_lessons()
    texts = {key: (REPO / path).read_text(encoding="utf-8") for key, path in check.LESSONS.items()}
    for figure in check.FIGURES:
        assert figure.run in check.RUNS, figure
        check.written_value(check.find_cell(texts[figure.lesson], figure), figure)


def test_a_stale_figure_is_reported_with_its_readme_row_and_column():
    check = _check_lessons()
    table = "| flags | refused | p99 |\n|---|---:|---:|\n| `--x` | **462** | 6.4 s |\n"
    refused = check.Figure("14", "`--x`", "refused", "14-admit-none", "consumer.shed", check.COUNT)
    p99 = check.Figure(
        "14", "`--x`", "p99", "14-admit-none", "producer.latency_p99_ms", check.LATENCY
    )
    assert check.written_value(check.find_cell(table, refused), refused) == (462.0, "462")
    assert check.written_value(check.find_cell(table, p99), p99) == (6400.0, "6.4 s")
    assert check.COUNT.allows(462, 466) and not check.COUNT.allows(462, 480)
    assert not check.RECOVERY.allows(None, 4.0) and check.RECOVERY.allows(None, None)
    row = {
        "readme": "workshop_materials/14_rate_limiting/README.md",
        "row": "`--x`",
        "column": "p99",
        "written": "6.4 s",
        "measured": 2.1,
        "source": p99.source,
        "tolerance": p99.tol.describe(),
        "ok": False,
        "command": "consumer ... | producer ...",
    }
    text = check.report([row])
    assert "STALE workshop_materials/14_rate_limiting/README.md | `--x` | p99" in text
    assert "0 of 1 figures hold; 1 STALE" in text and "consumer ... | producer ..." in text


def test_a_figure_names_its_row_by_two_cells_when_the_first_repeats():
    check = _check_lessons()
    table = "| algorithm | worker | mean limit |\n|---|---|---|\n"
    table += "| AIMD | 1x | 18.8 |\n| AIMD | 2x slow | 9.5 |\n"
    both = check.Figure("19", "AIMD", "mean limit", "19-limit", "aimd.1x.limit", check.COUNT)
    with pytest.raises(LookupError):
        check.find_cell(table, both)  # two rows start with AIMD
    for half, written in (("1x", 18.8), ("2x slow", 9.5)):
        figure = check.Figure(
            "19", "AIMD", "mean limit", "19-limit", f"aimd.{half}.limit", check.COUNT, cell2=half
        )
        assert check.written_value(check.find_cell(table, figure), figure)[0] == written
    assert check.source_value({"aimd": {"2x slow": {"limit": 9.5}}}, "aimd.2x slow.limit") == 9.5


def test_the_quick_lesson_check_passes():
    """The lessons' own tables, re-measured: counts exact by construction, p99s roughly."""
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "check_lessons.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=str(REPO),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "STALE" not in done.stdout and " figures hold." in done.stdout
