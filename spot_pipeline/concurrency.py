"""Bounded parallel work: the one thread pool pattern of the pipeline.

Fetching many pairs from the API and copying many chunks of a table both run a function over many
items on a few threads, consume each result as it comes, and must stop cleanly on the first error.
`bounded_map` does that with a bounded number of items in flight, so memory stays flat however many
items there are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from itertools import islice
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def bounded_map(
    function: Callable[[Item], Result],
    items: Iterable[Item],
    workers: int,
    max_pending: int | None = None,
) -> Iterator[Result]:
    """Yield `function(item)` for every item as each call finishes, `workers` calls at a time.

    At most `max_pending` items (twice the workers by default) are handed to the pool ahead of the
    consumer. The first error, raised by a call or by the consumer, cancels the items not yet
    started and, once the running calls are done, is raised here. One worker runs every call in the
    calling thread, in order (an SQLite connection is then never shared between threads).
    """
    if workers <= 1:
        yield from map(function, items)
        return
    remaining = iter(items)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: set[Future[Result]] = {
            pool.submit(function, item) for item in islice(remaining, max_pending or 2 * workers)
        }
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
                pending |= {pool.submit(function, item) for item in islice(remaining, len(done))}
        except BaseException:
            for future in pending:
                future.cancel()
            raise
