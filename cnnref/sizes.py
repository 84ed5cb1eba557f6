"""Output size of a strided, padded, dilated window (book: "Stride, padding, dilation and output size").

[eq-output-size]:  n_out = ⌊(n + 2P − d (K − 1) − 1) / s⌋ + 1

with ``P`` zeros on *each* side, dilation ``d`` and stride ``s``. The floor is
what PyTorch, JAX and TensorFlow do: when the stride does not divide
``n + 2P − d(K − 1) − 1``, the last rows of the padded input are never read.
"""

from __future__ import annotations

from ._validate import as_int


def output_size(n, kernel, stride=1, padding=0, dilation=1) -> int:
    """Number of output positions along one axis ([eq-output-size]).

    n: input length (>= 1); kernel: kernel length (>= 1); stride >= 1;
    padding >= 0 zeros on each side; dilation >= 1. Raises ``ValueError``
    when the dilated kernel ``d (K − 1) + 1`` does not fit in ``n + 2P``.
    """
    n, kernel, stride = as_int(n, "n"), as_int(kernel, "kernel"), as_int(stride, "stride")
    padding, dilation = as_int(padding, "padding"), as_int(dilation, "dilation")
    for name, value, minimum in (("n", n, 1), ("kernel", kernel, 1), ("stride", stride, 1),
                                 ("padding", padding, 0), ("dilation", dilation, 1)):
        if value < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value}")
    span = dilation * (kernel - 1) + 1
    if span > n + 2 * padding:
        raise ValueError(
            f"the dilated kernel spans {span} (kernel={kernel}, dilation={dilation}) but the padded input "
            f"has only {n + 2 * padding} (n={n}, padding={padding} per side); the output would be empty"
        )
    return (n + 2 * padding - span) // stride + 1
