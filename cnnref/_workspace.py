"""Scratch memory and batch pieces for the vectorised convolution (private).

Two measured facts shape the vectorised ``conv2d_forward`` / ``conv2d_backward``
(``benchmarks/bench_conv.py``):

* Their temporaries (padded input, im2col matrix, column gradient) are large,
  and a fresh multi-megabyte numpy array is mapped from the operating system
  page by page: the page faults on first touch can cost more than the
  arithmetic of a small layer. So the temporaries are written into buffers
  that are kept from one call to the next; those with fixed zero margins
  (the padding, say) get their zeros written once, not on every call.
* Working through the batch a few examples at a time, so that one piece's
  temporaries (about ``CHUNK_BYTES`` each) stay in a core's L2 cache between
  the copy that writes them and the matrix product that reads them, is faster
  than building them for the whole batch.

Both live behind one object, :class:`Workspace`, used as::

    with workspace() as ws:
        for sl in ws.batches(n, bytes_per_example):    # slices of the batch
            cols = ws.array("cols", shape, dtype)       # uninitialised, reused
            ...

Memory. When a layer call ends, its thread's buffers are kept for the next
call only if together they hold at most ``KEEP_BYTES``; a call that needed more
(one large example, say) releases all of them, so a large convolution does not
keep its scratch memory. ``release_buffers()`` (also importable as
``cnnref.conv.release_buffers``) releases every thread's buffers at once, and
``held_bytes()`` says how many bytes are held. A thread's buffers also go when
the thread ends.

Only internal temporaries live here: no layer returns (a view of) a buffer,
every returned array is freshly allocated. Each thread has its own buffers.
"""

from __future__ import annotations

import contextlib
import math
import threading
import weakref

import numpy as np

__all__ = ["Workspace", "workspace", "release_buffers", "held_bytes", "CHUNK_BYTES", "KEEP_BYTES"]

# About this many bytes per temporary and piece of the batch: best or tied (within the noise) of
# 0.5, 1, 1.5, 2, 4 and 8 MiB on the benchmark workloads of benchmarks/bench_conv.py.
CHUNK_BYTES = 1 << 20  # 1 MiB
# Buffers kept between calls, per thread, at most; a forward and backward pass of any benchmark
# workload keeps at most 3.5 MiB, one (1, 32, 128, 128) example with 3x3 kernels needs about 80 MiB.
KEEP_BYTES = 1 << 24  # 16 MiB


class Workspace:
    """Named scratch buffers, reused from call to call, and the batch split into pieces."""

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}  # name -> flat uint8 buffer
        self._layouts: dict[str, tuple] = {}  # name -> (shape, dtype, layout) last handed out

    def batches(self, n: int, bytes_per_example: int) -> list[slice]:
        """Slices of a batch of ``n``: as few pieces as keep each at most ``CHUNK_BYTES`` (at least one
        example each), all of the same size except possibly a smaller last one."""
        most = max(1, CHUNK_BYTES // max(1, bytes_per_example))
        pieces = -(-n // most)
        step = -(-n // pieces)
        return [slice(i, min(n, i + step)) for i in range(0, n, step)]

    def array(self, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        """An uninitialised C-contiguous array of ``shape`` in the buffer called ``name``.

        The buffer grows to the largest size requested and is reused after that, so the
        array is overwritten by the next request for ``name``: two temporaries that are
        alive at the same time need two names.
        """
        return self._take(name, shape, dtype, None)[0]

    def zeros(self, name: str, shape: tuple[int, ...], dtype, layout) -> np.ndarray:
        """Like :meth:`array`, but zero wherever the previous user of ``name`` left it zero.

        For temporaries with fixed zero regions (margins, gaps) that every user writes only
        outside them; ``layout`` (any hashable) says where those regions are, e.g. the padding.
        The array is zero-filled when ``name`` is first handed out with this shape, dtype and
        ``layout``; later requests with the same three get the buffer as it was left, so the
        zeros are written once, not on every call.
        """
        a, new_layout = self._take(name, shape, dtype, layout)
        if new_layout:
            a.fill(0)
        return a

    def _take(self, name, shape, dtype, layout) -> tuple[np.ndarray, bool]:
        """The array for ``name``, and whether its memory or layout differs from the last request."""
        dtype, shape = np.dtype(dtype), tuple(shape)
        nbytes = dtype.itemsize * math.prod(shape)
        buf = self._buffers.get(name)
        new_layout = buf is None or buf.nbytes < nbytes or self._layouts.get(name) != (shape, dtype, layout)
        if buf is None or buf.nbytes < nbytes:
            buf = np.empty(nbytes, dtype=np.uint8)
            self._buffers[name] = buf
        self._layouts[name] = (shape, dtype, layout)
        return buf[:nbytes].view(dtype).reshape(shape), new_layout

    @property
    def nbytes(self) -> int:
        """Bytes held by this workspace's buffers."""
        return sum(buf.nbytes for buf in list(self._buffers.values()))

    def release(self) -> None:
        """Drop every buffer (arrays handed out earlier stay valid until their last use)."""
        self._buffers.clear()
        self._layouts.clear()


_local = threading.local()
_all_workspaces: weakref.WeakSet[Workspace] = weakref.WeakSet()
_registry_lock = threading.Lock()


@contextlib.contextmanager
def workspace():
    """This thread's :class:`Workspace` for the duration of one layer call.

    On exit the buffers are released if they hold more than ``KEEP_BYTES``. A call made
    while the thread's workspace is already in use gets a private one, released on exit.
    """
    ws = getattr(_local, "workspace", None)
    if ws is None:
        ws = _local.workspace = Workspace()
        with _registry_lock:
            _all_workspaces.add(ws)
    if getattr(_local, "busy", False):
        yield Workspace()
        return
    _local.busy = True
    try:
        yield ws
    finally:
        _local.busy = False
        if ws.nbytes > KEEP_BYTES:
            ws.release()


def release_buffers() -> None:
    """Release the scratch buffers of every thread (they are re-created when next needed)."""
    with _registry_lock:
        workspaces = list(_all_workspaces)
    for ws in workspaces:
        ws.release()


def held_bytes() -> int:
    """Bytes of scratch buffers currently held, over all threads."""
    with _registry_lock:
        workspaces = list(_all_workspaces)
    return sum(ws.nbytes for ws in workspaces)
