"""Challenge 16: the consumer's batch-size rule. Your file: edit it, then run

    bplab check 16_adaptive_batcher

The consumer writes messages in batches (Module 16): a batch of ``b`` takes 8 ms plus 2 ms
a message, and a batch waits up to 100 ms for ``b`` messages before it goes anyway. Before
each batch the consumer asks ``batch_size()``; after each one it tells you
``observe(size, duration_s, now)``: how many messages the batch held, how long it took,
and the consumer's clock when it finished.

As it stands the rule always answers 1. Run the check and see.
"""


class Batcher:
    """Batches seen in, next batch size out."""

    def __init__(
        self, batch_overhead_ms: float = 8.0, item_ms: float = 2.0, batch_max: int = 200
    ) -> None:
        self.overhead_s = batch_overhead_ms / 1000  # what a batch costs, whatever its size
        self.item_s = item_ms / 1000  # what each message in it adds
        self.maximum = batch_max  # the graded bound on the size
        self.size = 1  # TODO 1: a size that suits the load you see

    def batch_size(self) -> int:
        return self.size

    def observe(self, size: int, duration_s: float, now: float) -> None:
        """TODO 2: learn from each batch: how many messages arrive per second, and whether
        the worker is keeping up. Grow when it is not, shrink when the load is light."""
