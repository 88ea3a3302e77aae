#!/usr/bin/env python3
"""Per-operation CPU profile of `metalearn bench` on flex, from `perf`.

Runs the release binary under `perf record --call-graph dwarf`, then sorts every sample into an
operation kind by the first frame (from the leaf up) that names one: this project's flex kernels
(`meta_backbones::flex::*`), burn-flex's operations, the matrix product, autodiff bookkeeping,
the allocator, the kernel's page faults, threads waiting. Prints CPU milliseconds per task for
each kind (both cores' time added up, so the column sums to about cores × wall time). Only the
standard library and `perf` are needed.

    python3 bench/profile_ops.py --binary target/release/metalearn --algo maml \\
        --workload omniglot-5w1s --meta-batch 4 --iters 2
"""
import argparse
import collections
import re
import subprocess
import sys
import tempfile

# (pattern on a frame's symbol, kind); the first frame from the leaf up that matches decides.
KINDS = [
    (r"meta_backbones::flex::conv::forward_image", "conv forward (ours)"),
    (r"meta_backbones::flex::conv::input_grad_image", "conv input gradient (ours)"),
    (r"meta_backbones::flex::conv::weight_grad_chunk", "conv weight gradient (ours)"),
    (r"meta_backbones::flex::channel::", "batch-norm channel ops (ours)"),
    (r"meta_backbones::flex::maxpool::", "max-pool (ours)"),
    (r"burn_flex::ops::conv_transpose", "conv transpose (flex)"),
    (r"burn_flex::ops::conv", "conv (flex)"),
    (r"burn_flex::ops::matmul", "matmul (flex)"),
    (r"burn_flex::ops::binary", "element-wise binary (flex)"),
    (r"burn_flex::ops::(unary|activation)", "element-wise unary (flex)"),
    (r"burn_flex::ops::reduce", "reductions (flex)"),
    (r"burn_flex::ops::(slice|cat|expand|repeat_dim)", "copies: slice/cat/expand (flex)"),
    (r"burn_flex::ops::gather_scatter|burn_flex::ops::mask", "gather/scatter/mask (flex)"),
    (r"burn_flex::ops::", "other flex ops"),
    (r"burn_flex::tensor::FlexTensor::to_contiguous|burn_flex::.*copy", "layout copies (flex)"),
    (r"gemm_", "matrix product (gemm, caller unknown)"),
    (r"meta_data::", "episode data"),
    (r"burn_autodiff::", "autodiff bookkeeping"),
    (r"^(malloc|free|_int_|mi_|_mi_|realloc|calloc|cfree)", "allocator"),
    (r"exc_page_fault|clear_page|do_anonymous_page|unmap_page|__handle_mm_fault", "page faults"),
    (r"rayon_core::(registry|sleep)|sched_yield|futex", "threads waiting"),
    (r"__mem(set|move|cpy)", "memset/memcpy (caller unknown)"),
]
COMPILED = [(re.compile(p), k) for p, k in KINDS]


def classify(frames):
    for sym in frames:
        for pat, kind in COMPILED:
            if pat.search(sym):
                return kind
    return "other"


def samples(script_text):
    """Yields (period, [symbols leaf first]) for each sample of `perf script`."""
    period, frames = None, []
    for line in script_text.splitlines():
        if not line.strip():
            if period is not None:
                yield period, frames
            period, frames = None, []
        elif not line.startswith(("\t", " ")):
            m = re.search(r"\s(\d+)\s+cpu-clock", line)
            period = int(m.group(1)) if m else 0
        else:
            parts = line.strip().split(" ", 1)
            if len(parts) == 2:
                frames.append(re.sub(r"\+0x[0-9a-f]+ \(.*\)$", "", parts[1]))
    if period is not None:
        yield period, frames


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--backend", default="flex")
    ap.add_argument("--algo", default="maml")
    ap.add_argument("--workload", default="omniglot-5w1s")
    ap.add_argument("--meta-batch", type=int, default=4)
    ap.add_argument("--iters", type=int, default=2)
    ap.add_argument("--freq", type=int, default=299)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = f"{tmp}/perf.data"
        cmd = [args.binary, "bench", "--backend", args.backend, "--algo", args.algo,
               "--workload", args.workload, "--meta-batch", str(args.meta_batch),
               "--iters", str(args.iters), "--warmup", "0", "--out", f"{tmp}/bench"]
        subprocess.run(["perf", "record", "-q", "-F", str(args.freq), "--call-graph",
                        "dwarf,16384", "-o", data, "--"] + cmd, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        text = subprocess.run(["perf", "script", "--no-inline", "-i", data], check=True, capture_output=True,
                              text=True).stdout
    totals = collections.Counter()
    for period, frames in samples(text):
        totals[classify(frames)] += period
    tasks = args.meta_batch * args.iters
    total_ns = sum(totals.values())
    print(f"{args.backend} {args.workload} {args.algo}: {tasks} tasks (+ setup), "
          f"{total_ns / 1e6:.0f} ms CPU in all")
    print(f"| operation kind | CPU ms per task | share |")
    print(f"|---|---|---|")
    for kind, ns in totals.most_common():
        print(f"| {kind} | {ns / 1e6 / tasks:.1f} | {100 * ns / total_ns:.1f}% |")


if __name__ == "__main__":
    sys.exit(main())
