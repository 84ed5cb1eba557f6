"""cnnref._workspace: the scratch buffers and batch pieces of the vectorised convolution.

The buffers make repeated calls fast (no page faults on fresh temporaries), but they must not
pin memory: a call that needed more than ``KEEP_BYTES`` releases them when it ends, and
``release_buffers()`` (also ``cnnref.conv.release_buffers``) releases everything at once.
"""

from __future__ import annotations

import gc
import threading
import tracemalloc

import numpy as np
import pytest

import cnnref.conv
from cnnref import _workspace, conv2d_backward, conv2d_forward
from cnnref._workspace import KEEP_BYTES, Workspace, held_bytes, release_buffers, workspace

MiB = 1 << 20


def _layer(x_shape, c_out, k, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal((c_out, x_shape[1], k, k))
    z = conv2d_forward(x, w, padding=k // 2)
    return x, w, rng.standard_normal(z.shape)


def test_release_buffers_releases_what_a_small_convolution_keeps():
    x, w, dz = _layer((4, 3, 12, 12), 5, 3)
    release_buffers()
    assert held_bytes() == 0
    conv2d_forward(x, w, padding=1)
    conv2d_backward(dz, x, w, padding=1)
    kept = held_bytes()
    assert 0 < kept <= KEEP_BYTES  # a small layer keeps its buffers for the next call
    cnnref.conv.release_buffers()  # the documented name
    assert held_bytes() == 0
    # and the next call simply allocates them again, with the same results
    np.testing.assert_array_equal(conv2d_forward(x, w, padding=1), conv2d_forward(x, w, padding=1))
    assert held_bytes() > 0


def test_a_large_convolution_does_not_keep_its_scratch_memory():
    # One (1, 32, 128, 128) example with 3x3 kernels: the im2col matrix alone is 38 MB in float64,
    # the column gradient as much again. The buffers exceed KEEP_BYTES, so they go when the call ends.
    x, w, dz = _layer((1, 32, 128, 128), 8, 3, seed=1)
    release_buffers()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        z = conv2d_forward(x, w, padding=1)
        grads = conv2d_backward(dz, x, w, padding=1)
        del z, grads
        gc.collect()
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - before > 64 * MiB  # the scratch memory was really used ...
    assert after - before < 1 * MiB  # ... and none of it is held afterwards
    assert held_bytes() == 0


def test_release_buffers_reaches_other_threads_and_a_thread_takes_its_buffers_along():
    x, w, dz = _layer((2, 3, 10, 10), 4, 3, seed=2)
    release_buffers()
    done, finish = threading.Event(), threading.Event()

    def work():
        conv2d_backward(dz, x, w, padding=1)
        done.set()
        finish.wait(10)

    worker = threading.Thread(target=work)
    worker.start()
    try:
        assert done.wait(10)
        assert held_bytes() > 0  # the worker's buffers, kept after its call
        release_buffers()  # from this thread
        assert held_bytes() == 0
        conv2d_forward(x, w, padding=1)
        assert held_bytes() > 0
    finally:
        finish.set()
        worker.join()
    release_buffers()
    worker = threading.Thread(target=lambda: conv2d_backward(dz, x, w, padding=1))
    worker.start()
    worker.join()
    gc.collect()
    assert held_bytes() == 0  # a thread's buffers go with it


@pytest.mark.parametrize("n, per_example, chunk", [(13, 194_400, 450_000), (13, 97_200, 450_000), (64, 1, 1 << 20),
                                                    (5, 10 << 20, 1 << 20), (1, 5, 1), (7, 100, 250)])
def test_batches_cover_the_batch_in_equal_pieces_within_the_chunk(n, per_example, chunk, monkeypatch):
    monkeypatch.setattr(_workspace, "CHUNK_BYTES", chunk)
    pieces = Workspace().batches(n, per_example)
    assert [i for sl in pieces for i in range(sl.start, sl.stop)] == list(range(n))
    sizes = [sl.stop - sl.start for sl in pieces]
    assert all(size == sizes[0] for size in sizes[:-1]) and 0 < sizes[-1] <= sizes[0]
    assert sizes[0] * per_example <= chunk or sizes[0] == 1  # one example that alone exceeds the chunk
    assert len(pieces) == -(-n // max(1, chunk // per_example))  # as few pieces as that allows


def test_array_reuses_its_buffer_and_zeros_keeps_its_zeros():
    ws = Workspace()
    a = ws.array("a", (3, 4), np.float64)
    a[...] = 7.0
    b = ws.array("a", (2, 6), np.float64)  # same name: the same memory, uninitialised
    assert np.shares_memory(a, b) and b.flags.c_contiguous
    assert not np.shares_memory(a, ws.array("other", (3, 4), np.float64))
    assert ws.array("a", (3, 4), np.float32).dtype == np.float32  # any dtype in the same bytes
    z = ws.zeros("z", (4, 5), np.float64, layout="left 2 columns")
    assert np.all(z == 0)
    z[:, 2:] = 1.0  # a user writes only outside its zero region ...
    again = ws.zeros("z", (4, 5), np.float64, layout="left 2 columns")
    np.testing.assert_array_equal(again[:, :2], 0.0)  # ... which is not re-zeroed (nor the rest)
    np.testing.assert_array_equal(again[:, 2:], 1.0)
    for other in (dict(shape=(5, 4), dtype=np.float64, layout="left 2 columns"),
                  dict(shape=(4, 5), dtype=np.float64, layout="left 3 columns"),
                  dict(shape=(4, 5), dtype=np.float32, layout="left 2 columns")):
        ws.array("z", (4, 5), np.float64)[...] = 1.0
        assert np.all(ws.zeros("z", **other) == 0)  # another layout is zero-filled
    assert ws.nbytes > 0
    ws.release()
    assert ws.nbytes == 0


def test_a_nested_call_gets_a_private_workspace():
    with workspace() as outer:
        a = outer.array("conv.cols", (10,), np.float64)
        a[...] = 1.0
        with workspace() as inner:
            assert inner is not outer
            inner.array("conv.cols", (10,), np.float64)[...] = 2.0
        np.testing.assert_array_equal(a, 1.0)  # the outer temporary is untouched
    with workspace() as again:
        assert again is outer  # the thread's workspace once the outer call is over


def test_buffers_above_keep_bytes_are_released_when_the_call_ends(monkeypatch):
    monkeypatch.setattr(_workspace, "KEEP_BYTES", 1000)
    release_buffers()
    with workspace() as ws:
        ws.array("small", (100,), np.float64)  # 800 bytes: kept
    assert held_bytes() == 800
    with workspace() as ws:
        ws.array("big", (200,), np.float64)  # together 2400 bytes: all released
        assert held_bytes() == 2400
    assert held_bytes() == 0
