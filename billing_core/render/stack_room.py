"""Call a function with room for its callees' frames, so deep recursion does not map and
unmap memory on every call.

CPython 3.11+ keeps Python frames in 16 KiB chunks: a call that does not fit in the
current chunk maps a new one, and its return unmaps it. A renderer whose recursion
(WeasyPrint's layout) goes back and forth across a chunk's end does that on every pass,
and each new chunk costs page faults. Where the ends fall depends on how deep the caller
already is, so the same render cost 22k-79k page faults per 60 invoices depending on the
caller's depth, and 9 % more time inside a Prefect task than called directly
(docs/performance.md, ninth pass).

`with_stack_room` calls through a function whose frame claims `ROOM_WORDS` slots of
stack: the interpreter puts that frame at the start of a chunk of twice that size, and
the callees' frames fit in the rest (deeper still, calls take new chunks as before).
Only the touched pages are ever mapped in; the chunk is freed when the call returns.
Elsewhere (other Pythons) it is a plain call.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

ROOM_WORDS = 1 << 16   # 512 KiB of frame slots: thousands of frames of ordinary size


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return fn(*args, **kwargs)


_roomy_call = types.FunctionType(
    _call.__code__.replace(co_stacksize=_call.__code__.co_stacksize + ROOM_WORDS),
    _call.__globals__, "_roomy_call")


def with_stack_room(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """`fn(*args, **kwargs)`, its callees' frames in one chunk of their own."""
    result: R = _roomy_call(fn, *args, **kwargs)
    return result
