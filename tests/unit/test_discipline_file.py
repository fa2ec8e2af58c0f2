"""A person's queue discipline (``--discipline-file``): loaded as its own plugin kind and
served through ``FromFile``, which drops and serves exactly what the class says."""

from collections import deque

from lab.core.buffer import Message
from lab.core.disciplines import FromFile
from lab.processes import plugins
from tests.conftest import REPO


def _message(seq, deadline):
    return Message(b"p", seq, enqueued_at=0.0, deadline=deadline)


def test_the_reference_loads_as_a_discipline_and_drops_what_cannot_finish():
    path = str(REPO / "exercises" / "solutions" / "19_goodput.py")
    discipline = FromFile(
        plugins.build(plugins.load_class(path, "discipline"), {"service_time_s": 0.01})
    )
    queue = deque([_message(1, 1.005), _message(2, 1.02), _message(3, 2.0)])
    served, dropped = discipline.pick(queue, 1.0)
    assert (served.seq, [m.seq for m in dropped], len(queue)) == (2, [1], 1)
    assert discipline.status() == {"discipline": "file"}
