"""The cyclic garbage collector paused while a parse builds millions of objects (pure).

Reading an index checkpoint makes a few objects per record, none in a cycle; with the collector
on, its collections, each walking every object made so far, were about 60% of the parse's CPU
(bench/index_bench.py). Paused, nothing is lost: reference counting frees what it always
freed, and the collector runs again once the parse is over. It is process-wide, so a pause
ends as it began: a parse that found it off (another one's pause, or the program's choice)
leaves it off.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()
