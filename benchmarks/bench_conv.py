"""Side-by-side timing of cnnref's conv (and max-pool) layers against PyTorch CPU and jax.jit.

One process, one thread for every library, float32 and float64. Prints a
Markdown table of median times and ratios to PyTorch. This is a benchmark,
not a test: nothing here asserts a speed.

    python benchmarks/bench_conv.py [--repeat 15] [--json out.json]

The run the book quotes is recorded in ``cnnref/book/benchmark.json`` (it ships with the package,
so the speed chapter runs without this folder); ``--json cnnref/book/benchmark.json`` refreshes it.

The thread limits must be set before numpy, torch or jax are imported, which
is why they are set at the top of this file.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import timeit  # noqa: E402

import numpy as np  # noqa: E402

import cnnref  # noqa: E402
from cnnref._workspace import Workspace  # noqa: E402

# name: (N, C_in, H, W, C_out, k, stride, padding)
WORKLOADS = {
    "W1": (64, 1, 28, 28, 6, 5, 1, 0),
    "W2": (32, 16, 32, 32, 32, 3, 1, 1),
    "W3": (32, 16, 32, 32, 32, 3, 2, 1),
    "W4": (256, 1, 8, 8, 8, 3, 1, 1),
}
# name: (N, C, H, W, size, stride)
POOL_WORKLOADS = {
    "P1": (64, 6, 24, 24, 2, 2),
    "P2": (32, 32, 32, 32, 2, 2),
    "P3": (32, 32, 32, 32, 3, 2),
}


def machine_info() -> dict:
    """What the numbers were measured on (CPU model, cores, library versions)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = None
    import jax

    return dict(cpu=cpu, logical_cpus=os.cpu_count(), python=platform.python_version(), numpy=np.__version__,
                torch=torch_version, jax=jax.__version__, threads=1,
                torch_conv_kernels={np.dtype(d).name: torch_kernels(d) for d in (np.float64, np.float32)},
                torch_im2col_kernels={np.dtype(d).name: torch_kernels(d, True) for d in (np.float64, np.float32)})


def median_time(fn, repeat: int) -> float:
    fn()  # warm-up (jit compilation, allocator)
    number = 3
    return float(np.median(timeit.repeat(fn, number=number, repeat=repeat))) / number


def conv_cases(dtype, spec, rng):
    n, c, h, w_, o, k, s, p = spec
    x = rng.standard_normal((n, c, h, w_)).astype(dtype)
    w = rng.standard_normal((o, c, k, k)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    z = cnnref.conv2d_forward(x, w, b, stride=s, padding=p)
    dz = rng.standard_normal(z.shape).astype(dtype)
    cases = {}

    def ref_fwd():
        cnnref.conv2d_forward(x, w, b, stride=s, padding=p)

    def ref_fb():
        cnnref.conv2d_forward(x, w, b, stride=s, padding=p)
        cnnref.conv2d_backward(dz, x, w, stride=s, padding=p)

    cases["cnnref"] = (ref_fwd, ref_fb)

    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(1)
        xt, wt, bt, dzt = (torch.from_numpy(a) for a in (x, w, b, dz))
        xt.requires_grad_(True)
        wt.requires_grad_(True)
        bt.requires_grad_(True)

        def torch_fwd():
            with torch.no_grad():
                torch.nn.functional.conv2d(xt, wt, bt, stride=s, padding=p)

        def torch_fb():
            zt = torch.nn.functional.conv2d(xt, wt, bt, stride=s, padding=p)
            torch.autograd.grad(zt, (xt, wt, bt), dzt)

        cases["torch"] = (torch_fwd, torch_fb)

        # PyTorch's own im2col + matrix-product path, the method cnnref uses: in float32 PyTorch
        # otherwise runs oneDNN's convolution kernel, or NNPACK's if oneDNN is off (float64 takes
        # this path anyway). machine_info() records the kernels each setting runs.
        def torch_im2col(fn):
            def run():
                with im2col_only(torch):
                    fn()

            return run

        cases["torch im2col"] = (torch_im2col(torch_fwd), torch_im2col(torch_fb))

    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    def jconv(x, w, b):
        z = jax.lax.conv_general_dilated(
            x, w, (s, s), [(p, p), (p, p)], dimension_numbers=("NCHW", "OIHW", "NCHW")
        )
        return z + b[None, :, None, None]

    jf = jax.jit(jconv)
    jfb = jax.jit(lambda x, w, b, dz: jax.vjp(jconv, x, w, b)[1](dz))
    xj, wj, bj, dzj = (jnp.asarray(a) for a in (x, w, b, dz))
    cases["jax.jit"] = (
        lambda: jf(xj, wj, bj).block_until_ready(),
        lambda: jax.block_until_ready(jfb(xj, wj, bj, dzj)),
    )
    return cases


def gemm_floor(dtype, spec, rng):
    """The matrix products alone of cnnref's im2col formulation, on operands built beforehand.

    cnnref's forward is one product per example, ``[W | b] (C_out, C_in·k² + 1) @ cols (C_in·k² + 1, H'·W')``
    (the last row of cols is ones). Its backward works on the outputs laid out on rows of ``W_s``
    columns (``cnnref.conv._Planes``) and makes two more: ``cols @ dzᵀ`` for ``[dw | db]ᵀ``, one per
    example, and ``Wᵀ dz`` for the column gradient, one per (example, channel) or per (tap, example).
    Timing just these, in the same batch pieces and the same calls as cnnref and with no im2col copy,
    padding or col2im, gives the time cnnref would take if all its data movement were free: a floor
    for the method with numpy's BLAS. Returns (forward product, all three products) as callables.
    """
    n, c, h, w_, o, k, s, p = spec
    ho, wo = cnnref.output_size(h, k, s, p), cnnref.output_size(w_, k, s, p)
    ckk, hw, size = c * k * k, ho * wo, np.dtype(dtype).itemsize
    grid = cnnref.conv._Planes((n, c, h, w_), (o, c, k, k), (s, s), (p, p), (1, 1), (ho, wo))
    taps, q = len(grid.taps), grid.q
    fwd_pieces = Workspace().batches(n, (ckk + 1) * hw * size)
    bwd_pieces = Workspace().batches(n, grid.bytes_per_example * size)
    # one piece's operands, reused for every piece as cnnref reuses its scratch buffers
    bf, bb = fwd_pieces[0].stop, bwd_pieces[0].stop
    wb_mat = rng.standard_normal((o, ckk + 1)).astype(dtype)
    w_tco = wb_mat[:, :-1].reshape(o, c, taps).transpose(2, 1, 0)
    cols = rng.standard_normal((bf, ckk + 1, hw)).astype(dtype)
    cols_rows = rng.standard_normal((bb, ckk + 1, q)).astype(dtype)
    dz_rows = rng.standard_normal((bb, o, q)).astype(dtype)
    z, dcols = np.empty((n, o, hw), dtype), np.zeros((taps, bb, c, grid.plane), dtype)
    dwb_t = np.zeros((ckk + 1, o), dtype)

    def fwd():
        for sl in fwd_pieces:
            np.matmul(wb_mat, cols[: sl.stop - sl.start], out=z[sl])

    def fwd_bwd():
        fwd()
        for sl in bwd_pieces:
            m = sl.stop - sl.start
            dwb_t[...] += np.matmul(cols_rows[:m], dz_rows[:m].transpose(0, 2, 1)).sum(axis=0)
            if c >= taps:
                np.matmul(w_tco[:, None], dz_rows[None, :m], out=dcols[:, :m, :, :q])
            else:
                np.matmul(w_tco.transpose(1, 0, 2), dz_rows[:m, None], out=dcols[:, :m, :, :q].transpose(1, 2, 0, 3))

    return fwd, fwd_bwd


@contextlib.contextmanager
def im2col_only(torch):
    """Context in which PyTorch's CPU convolution takes its im2col + matrix-product path."""
    with torch.backends.mkldnn.flags(enabled=False), torch.backends.nnpack.flags(enabled=False):
        yield


def torch_kernels(dtype, same_method=False) -> list[str] | None:
    """The convolution kernels PyTorch runs for W2 in this dtype, by the names its profiler gives them."""
    try:
        import torch
        from torch.profiler import profile
    except ImportError:
        return None
    n, c, h, w_, o, k, s, p = WORKLOADS["W2"]
    x = torch.randn(n, c, h, w_, dtype=getattr(torch, np.dtype(dtype).name), requires_grad=True)
    w = torch.randn(o, c, k, k, dtype=x.dtype, requires_grad=True)
    with im2col_only(torch) if same_method else contextlib.nullcontext(), profile() as prof:
        z = torch.nn.functional.conv2d(x, w, stride=s, padding=p)
        torch.autograd.grad(z, (x, w), torch.ones_like(z))
    leaf = ("mkldnn", "nnpack", "slow_conv", "thnn", "im2col", "addmm", "aten::mm", "bmm")
    return sorted({e.name for e in prof.events()
                   if any(t in e.name for t in leaf) and not e.name.endswith("_available")})


def pool_cases(dtype, spec, rng):
    n, c, h, w_, size, stride = spec
    x = rng.standard_normal((n, c, h, w_)).astype(dtype)
    y = cnnref.maxpool2d_forward(x, size, stride)
    dy = rng.standard_normal(y.shape).astype(dtype)
    cases = {}

    def ref_fb():
        cnnref.maxpool2d_forward(x, size, stride)
        cnnref.maxpool2d_backward(dy, x, size, stride)

    cases["cnnref"] = ref_fb
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        xt, dyt = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(dy)

        def torch_fb():
            yt = torch.nn.functional.max_pool2d(xt, size, stride)
            torch.autograd.grad(yt, xt, dyt)

        cases["torch"] = torch_fb

    import jax
    import jax.numpy as jnp

    def jpool(x):
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, size, size), (1, 1, stride, stride), "VALID")

    jfb = jax.jit(lambda x, dy: jax.vjp(jpool, x)[1](dy))
    xj, dyj = jnp.asarray(x), jnp.asarray(dy)
    cases["jax.jit"] = lambda: jax.block_until_ready(jfb(xj, dyj))
    return cases


def print_row(name, dtype, label, t) -> None:
    """One Markdown table row: times in ms and the ratios to PyTorch ("n/a" without torch)."""
    tt = t.get("torch")
    cells = [name, np.dtype(dtype).name, label, f"{1e3 * t['cnnref']:.3f}", f"{1e3 * tt:.3f}" if tt else "n/a",
             f"{1e3 * t['jax.jit']:.3f}", f"{t['cnnref'] / tt:.2f}" if tt else "n/a",
             f"{t['jax.jit'] / tt:.2f}" if tt else "n/a"]
    if "gemm floor" in t:
        ti = t.get("torch im2col")
        cells += [f"{1e3 * t['gemm floor']:.3f}", f"{t['gemm floor'] / tt:.2f}" if tt else "n/a",
                  f"{1e3 * ti:.3f}" if ti else "n/a", f"{t['cnnref'] / ti:.2f}" if ti else "n/a"]
    print("| " + " | ".join(cells) + " |", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15, help="timing repeats; the median is reported")
    ap.add_argument("--json", help="also write the results to this JSON file")
    ap.add_argument("--only", choices=("conv", "pool"), help="run only one group")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    rows = []
    machine = machine_info()
    print(
        f"# machine: {machine['cpu']}, {machine['logical_cpus']} logical CPUs, python {machine['python']}, "
        f"numpy {machine['numpy']}, torch {machine['torch']}, jax {machine['jax']}; 1 thread each; "
        f"median of {args.repeat} repeats\n"
    )
    if args.only in (None, "conv"):
        print("| workload | dtype | pass | cnnref ms | torch ms | jax.jit ms | cnnref/torch | jax/torch "
              "| GEMM floor ms | floor/torch | torch im2col ms | cnnref/torch im2col |")
        print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for dtype in (np.float64, np.float32):
            for name, spec in WORKLOADS.items():
                cases = conv_cases(dtype, spec, rng)
                cases["gemm floor"] = gemm_floor(dtype, spec, rng)
                for k, label in ((0, "fwd"), (1, "fwd+bwd")):
                    t = {lib: median_time(fns[k], args.repeat) for lib, fns in cases.items()}
                    row = dict(workload=name, dtype=np.dtype(dtype).name, kind=label, **{f"{k_} s": v for k_, v in t.items()})
                    rows.append(row)
                    print_row(name, dtype, label, t)
    if args.only in (None, "pool"):
        print("\n| pool workload | dtype | pass | cnnref ms | torch ms | jax.jit ms | cnnref/torch | jax/torch |")
        print("|---|---|---|---:|---:|---:|---:|---:|")
        for dtype in (np.float64, np.float32):
            for name, spec in POOL_WORKLOADS.items():
                cases = pool_cases(dtype, spec, rng)
                t = {lib: median_time(fn, args.repeat) for lib, fn in cases.items()}
                rows.append(dict(workload=name, dtype=np.dtype(dtype).name, kind="maxpool fwd+bwd", **{f"{k} s": v for k, v in t.items()}))
                print_row(name, dtype, "fwd+bwd", t)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(dict(torch=machine["torch"], jax=machine["jax"], numpy=machine["numpy"], machine=machine,
                           repeat=args.repeat, workloads=WORKLOADS, pool_workloads=POOL_WORKLOADS, rows=rows),
                      fh, indent=1)
            fh.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
