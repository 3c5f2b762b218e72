"""The garbage collector of a long-running process role, set once it has started.

CPython's defaults (a young collection every 700 net allocations, a full one after every ten of
the middle generation's) suit short scripts. A create allocates some thousands of objects, so
the API process ran several young collections per request and a full one every second or so,
each a pause of 40 to 90 ms under load that every request in flight waited out (logged with
``gc.callbacks`` during ``bench/http_load.py --paths create``, 64 connections). Once a role has
started, :func:`settle`:

- collects once, then ``gc.freeze()``s what is alive: the modules, the role's services, pools and
  caches are never scanned again (what of them dies later is still freed by its reference count;
  only a reference cycle among them would stay, and a started role makes none of them);
- collects the young generation every ``YOUNG`` net allocations instead of 700, which makes the
  older generations' collections, full ones included, as much rarer.

Measured on Postgres (``bench/http_load.py --paths create``, three rounds alternating with the
code before): at 64 connections 1,216 / 1,110 / 1,121 -> 1,634 / 1,657 / 1,438 creates/s, CPU
0.79 / 0.87 / 0.87 -> 0.58 / 0.58 / 0.66 ms per create, p99 155 / 165 / 186 -> 90 / 86 / 100
ms; at 16 connections p99 76 / 73 / 74 -> 26 / 25 / 30 ms. Memory: a peak RSS up to 5 MB higher
(cyclic garbage lives a little longer between collections).

Only the process entry points call it (``taskwarden serve`` and its replicas, the worker,
relay, webhook and projection roles, and the benchmarks, which serve as deployed), never a test
process, whose apps come and go: there the frozen objects of one test would outlive it.
"""

from __future__ import annotations

import gc

YOUNG = 10_000  # net allocations between two collections of the young generation
OLDER = 10  # young collections per middle one, middle ones per full one (CPython's default)


def settle() -> None:
    """Call once the process's role has started."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG, OLDER, OLDER)
