"""with_stack_room: a plain call, whose callees never map a new frame chunk."""

import resource
import sys

import pytest

from billing_core.render.stack_room import with_stack_room


def test_it_is_a_plain_call():
    assert with_stack_room(divmod, 7, 2) == (3, 1)
    assert with_stack_room(sorted, [3, 1, 2], reverse=True) == [3, 2, 1]
    with pytest.raises(ZeroDivisionError):
        with_stack_room(divmod, 1, 0)


def recurse(depth: int) -> int:
    return 0 if depth == 0 else 1 + recurse(depth - 1)


def recurse_again_and_again(repeats: int = 200, depth: int = 400) -> None:
    """400 small frames span more than two 16 KiB chunks wherever the recursion starts."""
    for _ in range(repeats):
        assert recurse(depth) == depth


def page_faults(run) -> int:
    """Minor page faults of this thread while `run` runs."""
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    run()
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before


@pytest.mark.skipif(sys.version_info < (3, 11) or not hasattr(resource, "RUSAGE_THREAD"),
                    reason="frame chunks are CPython 3.11+'s; per-thread counts are Linux's")
def test_deep_recursion_under_it_maps_no_new_frame_chunks():
    # plainly, every repeat maps new chunks and faults their pages in
    assert page_faults(recurse_again_and_again) >= 200
    # under it, the recursion's pages are faulted in once, in the chunk made for the call
    assert page_faults(lambda: with_stack_room(recurse_again_and_again)) < 50
