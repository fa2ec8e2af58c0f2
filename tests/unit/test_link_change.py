"""Module 18's scheduled link change (``--link-delay-change-at`` / ``-ms``): the checks of
its flags (one line each, the CLI's exit 2) and when the delay line changes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from lab.processes.runtime import change_link, check_link_schedule, retune_link


@pytest.mark.parametrize(
    "delay, at, ms, words",
    [
        (10.0, 3.0, None, "--link-delay-change-at and --link-delay-change-ms go together"),
        (10.0, None, 60.0, "--link-delay-change-at and --link-delay-change-ms go together"),
        (0.0, 3.0, 60.0, "--link-delay-change-at needs --link-delay-ms"),
        (10.0, -1.0, 60.0, "--link-delay-change-at must be a finite number >= 0"),
        (10.0, 3.0, 20000.0, "--link-delay-change-ms must be between 0 and 10000"),
    ],
)
def test_a_bad_link_change_is_one_line(delay, at, ms, words):
    with pytest.raises(ValueError) as error:
        check_link_schedule(delay, at, ms)
    assert str(error.value).startswith(words) and "\n" not in str(error.value)


def test_the_delay_changes_once_at_its_time_and_frames_on_the_link_keep_theirs():
    check_link_schedule(10.0, 5.0, 60.0)  # a good pair passes
    link = retune_link(None, 10.0)
    run = SimpleNamespace(link_delay_ms=10.0, link_delay_change_at=5.0, link_delay_change_ms=60.0)
    assert link is not None and link.push("early", 4.0) == 4.01
    assert not change_link(link, run, 4.999) and link.delay == 0.01
    assert change_link(link, run, 5.0) and link.delay == 0.06
    assert run.link_delay_ms == 60.0  # what the snapshot and a later live change start from
    link.set_delay(0.02)  # a live change (bplab ctl delay) after the scheduled one ...
    assert not change_link(link, run, 6.0) and link.delay == 0.02  # ... is not undone
    link.set_delay(0.06)
    assert link.push("late", 5.0) == 5.06
    assert [item for _, item in link.release(4.01)] == ["early"]
    assert retune_link(None, 0.0) is None
    assert not change_link(None, run, 9.0)
