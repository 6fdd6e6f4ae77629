"""Failpoints: named places where a test can make this process die as if killed.

`BILLING_FAILPOINT=finalize.after_commit` makes the process send itself SIGKILL when it
reaches that place (each time); `render.after_document:3` only the third time;
`finalize.before_commit=sleep:5` makes it wait five seconds there instead (to hold a run
open while a test starts another). Crash tests use them to kill real processes at exact
points. Unset, a failpoint costs one dictionary look-up.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

_reached: Counter[str] = Counter()


def failpoint(name: str) -> None:
    """Die (SIGKILL, no clean-up) or pause here if BILLING_FAILPOINT names this place."""
    wanted = os.environ.get("BILLING_FAILPOINT")
    if not wanted:
        return
    place, _, action = wanted.partition("=")
    target, _, count = place.partition(":")
    if target != name:
        return
    _reached[name] += 1
    if count and _reached[name] != int(count):
        return
    if action.startswith("sleep:"):
        time.sleep(float(action.split(":", 1)[1]))
    else:
        os.kill(os.getpid(), signal.SIGKILL)
