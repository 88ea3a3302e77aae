#!/usr/bin/env python3
"""PyTorch reference for `metalearn bench`: the same meta-learning workloads in plain PyTorch.

Run by hand (see bench/README.md); needs only torch and the standard library. One timed
iteration = the meta-gradients of one meta-batch (inner loops, query losses, backward) plus one
outer optimizer step, on tensors already made; making the random tensors is timed separately
("data"). `--check` verifies the meta-gradients (MAML, ANIL against finite differences; FOMAML
differs; Reptile's pseudo-gradient) on a tiny float64 network instead of timing.
"""
import argparse
import ctypes
import gc
import json
import os
import platform
import resource
import statistics
import sys
import time
import warnings

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.func import functional_call  # noqa: E402

MAML_ALGOS = ["maml", "fomaml", "anil", "reptile", "protonet"]
# Conv4 body + 5-way head; `steps`/`lr`: the MAML-family inner loop (Reptile: see REPTILE_MODES).
WORKLOADS = {
    "omniglot-5w1s": dict(in_ch=1, hidden=64, image=28, ways=5, shots=1, queries=15,
                          meta_batch=32, steps=1, lr=0.4, algos=MAML_ALGOS),
    "miniimagenet-5w5s": dict(in_ch=3, hidden=32, image=84, ways=5, shots=5, queries=15,
                              meta_batch=4, steps=5, lr=0.01, algos=MAML_ALGOS),
    "protonet-episode": dict(in_ch=1, hidden=64, image=28, ways=5, shots=1, queries=15,
                             meta_batch=1, steps=0, lr=0.0, algos=["protonet"]),
}
OUTER_LR = 1e-3      # Adam, all algorithms but Reptile
REPTILE_OUTER_LR = 1.0  # SGD on the pseudo-gradient (Nichol et al.'s epsilon_0); speed-neutral
# Reptile's inner loop on support+query: "spec" = 1 plain SGD step on all the task's images;
# "metalearn" = what `metalearn bench` runs today (ReptileConfig defaults): the workload's inner
# steps, each on 10 class-interleaved images, Adam with beta1 = 0 (fresh per task).
REPTILE_MODES = ["metalearn", "spec"]


class Conv4(nn.Module):
    """4 × [conv3×3 pad 1 → BatchNorm (batch statistics, affine) → ReLU → 2×2 max-pool] + linear."""

    def __init__(self, in_ch, hidden, image, ways):
        super().__init__()
        layers, c, s = [], in_ch, image
        for _ in range(4):
            layers += [nn.Conv2d(c, hidden, 3, padding=1),
                       nn.BatchNorm2d(hidden, track_running_stats=False),
                       nn.ReLU(), nn.MaxPool2d(2)]
            c, s = hidden, s // 2
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Linear(hidden * s * s, ways)  # unused by ProtoNet

    def forward(self, x, features_only=False):
        f = self.body(x)
        return f if features_only else self.head(f)


def fwd(model, params, x, features_only=False):
    return functional_call(model, params, (x,), {"features_only": features_only})


def adapt(model, params, x, y, steps, lr, second_order):
    """`steps` SGD steps on the support cross-entropy; the result is differentiable w.r.t.
    `params` exactly (second order) or through the identity path only (first order)."""
    for _ in range(steps):
        loss = F.cross_entropy(fwd(model, params, x), y)
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=second_order)
        params = {k: p - lr * g for (k, p), g in zip(params.items(), grads)}
    return params


def query_loss(model, params, task, algo, wl):
    """Query loss of one task as a function of the meta-parameters `params`."""
    sx, sy, qx, qy = task
    if algo in ("maml", "fomaml"):
        adapted = adapt(model, params, sx, sy, wl["steps"], wl["lr"], algo == "maml")
        return F.cross_entropy(fwd(model, adapted, qx), qy)
    if algo == "anil":  # body features once per task; second-order inner loop on the head only
        fs, fq = fwd(model, params, sx, True), fwd(model, params, qx, True)
        w, b = params["head.weight"], params["head.bias"]
        for _ in range(wl["steps"]):
            gw, gb = torch.autograd.grad(F.cross_entropy(F.linear(fs, w, b), sy), (w, b),
                                         create_graph=True)
            w, b = w - wl["lr"] * gw, b - wl["lr"] * gb
        return F.cross_entropy(F.linear(fq, w, b), qy)
    if algo == "protonet":  # support and query embedded in one call (BN over the 80 images)
        emb = fwd(model, params, torch.cat([sx, qx]), True)
        s, q = emb[: sx.shape[0]], emb[sx.shape[0]:]
        protos = s.view(wl["ways"], -1, s.shape[1]).mean(1)  # labels are class-major
        return F.cross_entropy(-((q[:, None, :] - protos[None]) ** 2).sum(-1), qy)
    raise ValueError(algo)


def reptile_batches(y, wl):
    """Row indices of each Reptile inner step (None = all rows), as metalearn's
    `interleaved_batches`: class-interleaved order cut into chunks of 10, wrapping around."""
    if wl["reptile_mode"] == "spec":
        return [None]
    n, labels, seen, keyed = y.numel(), y.tolist(), {}, []
    for row, label in enumerate(labels):
        seen[label] = seen.get(label, 0) + 1
        keyed.append((seen[label], label, row))
    order = [row for _, _, row in sorted(keyed)]
    b = min(10, n)
    return [torch.tensor([order[(s * b + j) % n] for j in range(b)], device=y.device)
            for s in range(wl["steps"])]


class ReptileInner:
    """Reptile's inner optimizer over the fast weights: SGD ("spec") or Adam, beta1 = 0."""

    def __init__(self, mode):
        self.adam, self.v, self.t = mode == "metalearn", {}, 0

    @torch.no_grad()
    def step(self, phi, lr, beta2=0.999, eps=1e-8):
        self.t += 1
        for k, p in phi.items():
            g = p.grad
            if self.adam:
                v = self.v[k] = self.v.get(k, torch.zeros_like(g)).mul_(beta2).addcmul_(g, g, value=1 - beta2)
                g = g / ((v / (1 - beta2 ** self.t)).sqrt_().add_(eps))
            p.sub_(lr * g)
            p.grad = None


def meta_gradients(model, tasks, algo, wl):
    """Leaves mean-over-tasks meta-gradients in `.grad`, as metalearn's learners do:
    MAML family backward per task (scaled 1/B, accumulated), ProtoNet one backward of the mean."""
    params, n = dict(model.named_parameters()), len(tasks)
    if algo == "protonet":
        (sum(query_loss(model, params, t, algo, wl) for t in tasks) / n).backward()
    elif algo == "reptile":
        for sx, sy, qx, qy in tasks:
            x, y = torch.cat([sx, qx]), torch.cat([sy, qy])
            phi = {k: v.detach().clone().requires_grad_() for k, v in params.items()}
            inner = ReptileInner(wl["reptile_mode"])
            for rows in reptile_batches(y, wl):
                bx, by = (x, y) if rows is None else (x[rows], y[rows])
                F.cross_entropy(fwd(model, phi, bx), by).backward()
                inner.step(phi, wl["lr"])
            with torch.no_grad():
                F.cross_entropy(fwd(model, phi, qx), qy)  # query stats, as metalearn computes
                for k, w in params.items():  # pseudo-gradient mean_tau (W - Phi_tau)
                    d = (w - phi[k]) / n
                    w.grad = d if w.grad is None else w.grad.add_(d)
    else:
        for t in tasks:
            (query_loss(model, params, t, algo, wl) / n).backward()


def make_tasks(wl, n, device, dtype=torch.float32):
    lab = lambda per: torch.arange(wl["ways"], device=device).repeat_interleave(per)  # noqa: E731
    img = lambda m: torch.rand(m, wl["in_ch"], wl["image"], wl["image"], device=device, dtype=dtype)  # noqa: E731
    ns, nq = wl["ways"] * wl["shots"], wl["ways"] * wl["queries"]
    return [(img(ns), lab(wl["shots"]), img(nq), lab(wl["queries"])) for _ in range(n)]


# ---------------------------------------------------------------- memory, machine
def reset_peak_rss():
    """Returns freed heap to the OS (glibc), then resets VmHWM to the current RSS."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def status_mb(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def machine_info():
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), model)
    except OSError:
        pass
    return {"cpu_model": model, "cores": os.cpu_count(),
            "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "platform": platform.platform(), "python": platform.python_version()}


# ---------------------------------------------------------------- benchmark
def bench_one(name, wl, algo, args, device):
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    mb = args.meta_batch or wl["meta_batch"]
    wl = dict(wl, reptile_mode=args.reptile_mode)
    torch.manual_seed(0)
    model = Conv4(wl["in_ch"], wl["hidden"], wl["image"], wl["ways"]).to(device)
    if algo == "reptile":
        opt = torch.optim.SGD(model.parameters(), lr=REPTILE_OUTER_LR)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=OUTER_LR)
    gc.collect()
    reset_ok = reset_peak_rss()
    rss_base = status_mb("VmRSS")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    it_s, data_s, grad_s, outer_s = [], [], [], []
    for i in range(args.warmup + args.iters):
        sync(); t0 = time.perf_counter()
        tasks = make_tasks(wl, mb, device)
        sync(); t1 = time.perf_counter()
        meta_gradients(model, tasks, algo, wl)
        sync(); t2 = time.perf_counter()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync(); t3 = time.perf_counter()
        del tasks
        if i >= args.warmup:
            data_s.append(t1 - t0); grad_s.append(t2 - t1); outer_s.append(t3 - t2)
            it_s.append(t3 - t1)
    ru_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    hwm = status_mb("VmHWM")
    med = statistics.median(it_s)
    ms = lambda xs: 1000.0 * statistics.median(xs)  # noqa: E731
    r = {"backend": f"pytorch-{device.type}", "workload": name, "algo": algo, "meta_batch": mb,
         "device": str(device), "data": "synthetic",
         "inner_steps": (1 if args.reptile_mode == "spec" else wl["steps"]) if algo == "reptile"
         else (0 if algo == "protonet" else wl["steps"]),
         "iters": args.iters, "warmup": args.warmup,
         "tasks_per_sec_median": mb / med, "tasks_per_sec_min": mb / max(it_s),
         "tasks_per_sec_max": mb / min(it_s), "iteration_ms_median": 1000.0 * med,
         "data_ms": ms(data_s), "meta_grad_ms": ms(grad_s), "outer_ms": ms(outer_s),
         "peak_rss_mb": hwm if (reset_ok and hwm is not None) else ru_mb,
         "peak_rss_source": "VmHWM (reset before this configuration)" if (reset_ok and hwm is not None)
         else "ru_maxrss (process-wide, not reset)",
         "rss_at_start_mb": rss_base, "vm_hwm_mb": hwm, "ru_maxrss_mb": ru_mb, "rss_reset_ok": reset_ok}
    if algo == "reptile":
        r["reptile_mode"] = args.reptile_mode
    if device.type == "cuda":
        r["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return r


def print_table(results):
    cols = [("workload", "workload", "{}"), ("algo", "algo", "{}"), ("mb", "meta_batch", "{}"),
            ("tasks/s med", "tasks_per_sec_median", "{:.2f}"), ("min", "tasks_per_sec_min", "{:.2f}"),
            ("max", "tasks_per_sec_max", "{:.2f}"), ("iter ms", "iteration_ms_median", "{:.1f}"),
            ("data ms", "data_ms", "{:.1f}"), ("grad ms", "meta_grad_ms", "{:.1f}"),
            ("outer ms", "outer_ms", "{:.2f}"), ("peak MB", "peak_rss_mb", "{:.0f}")]
    rows = [[h for h, _, _ in cols]] + [[f.format(r[k]) for _, k, f in cols] for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(cols))]
    for j, row in enumerate(rows):
        print("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if j == 0:
            print("  ".join("-" * w for w in widths))


# ---------------------------------------------------------------- correctness check
def check(device):
    """float64 tiny Conv4: MAML/ANIL meta-gradients vs central finite differences."""
    torch.manual_seed(0)
    wl = dict(in_ch=1, hidden=3, image=16, ways=3, shots=2, queries=3, steps=2, lr=0.1)
    model = Conv4(1, 3, 16, 3).to(device=device, dtype=torch.float64)
    task = make_tasks(wl, 1, device, torch.float64)[0]
    names = [k for k, _ in model.named_parameters()]
    base = torch.cat([p.detach().flatten() for _, p in model.named_parameters()])

    def unflat(v, grad):
        out, i = {}, 0
        for k, p in model.named_parameters():
            out[k] = v[i:i + p.numel()].view_as(p).clone().requires_grad_(grad)
            i += p.numel()
        return out

    def analytic(algo):
        params = unflat(base, True)
        g = torch.autograd.grad(query_loss(model, params, task, algo, wl), [params[k] for k in names])
        return torch.cat([x.flatten() for x in g])

    def finite_diff(algo, h=1e-6):
        g = torch.zeros_like(base)
        for j in range(base.numel()):
            e = torch.zeros_like(base); e[j] = h
            lp = query_loss(model, unflat(base + e, True), task, "fomaml" if algo == "maml" else algo, wl)
            lm = query_loss(model, unflat(base - e, True), task, "fomaml" if algo == "maml" else algo, wl)
            g[j] = (lp.item() - lm.item()) / (2 * h)  # (the forward value is order-independent)
        return g

    rel = lambda a, b: ((a - b).norm() / b.norm()).item()  # noqa: E731
    fd_maml, fd_anil = finite_diff("maml"), finite_diff("anil")
    g_maml, g_fo, g_anil = analytic("maml"), analytic("fomaml"), analytic("anil")
    # Reptile ("spec": 1 SGD step on support+query): pseudo-gradient W - Phi = lr * grad L(W).
    sx, sy, qx, qy = task
    meta_gradients(model, [task], "reptile", dict(wl, reptile_mode="spec"))
    g_rep = torch.cat([p.grad.flatten() for _, p in model.named_parameters()])
    ce = F.cross_entropy(model(torch.cat([sx, qx])), torch.cat([sy, qy]))
    g_ce = torch.cat([x.flatten() for x in torch.autograd.grad(ce, list(model.parameters()))])
    res = {"params": base.numel(), "maml_vs_fd": rel(g_maml, fd_maml),
           "fomaml_vs_fd": rel(g_fo, fd_maml), "anil_vs_fd": rel(g_anil, fd_anil),
           "reptile_vs_lr_grad": rel(g_rep, wl["lr"] * g_ce)}
    print(f"check (float64, tiny Conv4: {res['params']} parameters, 3-way 2-shot, "
          f"{wl['steps']} inner steps, lr {wl['lr']}):")
    print(f"  maml   vs finite differences: relative error {res['maml_vs_fd']:.3e}  (want < 1e-6)")
    print(f"  anil   vs finite differences: relative error {res['anil_vs_fd']:.3e}  (want < 1e-6)")
    print(f"  fomaml vs maml's finite differences: relative difference {res['fomaml_vs_fd']:.3e}"
          "  (want > 1e-3: first order really drops the Hessian terms)")
    print(f"  reptile pseudo-gradient vs lr * grad: relative error {res['reptile_vs_lr_grad']:.3e}"
          "  (want < 1e-10)")
    ok = (res["maml_vs_fd"] < 1e-6 and res["anil_vs_fd"] < 1e-6 and res["fomaml_vs_fd"] > 1e-3
          and res["reptile_vs_lr_grad"] < 1e-10)
    print("check", "PASSED" if ok else "FAILED")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--meta-batch", type=int, default=None, help="override every workload's meta-batch")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--algos", default=",".join(MAML_ALGOS))
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "pytorch_reference.json"))
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--reptile-mode", choices=REPTILE_MODES, default="metalearn",
                    help="spec: 1 SGD step on all images; metalearn: as `metalearn bench` today")
    ap.add_argument("--check", action="store_true", help="run the finite-difference check and exit")
    args = ap.parse_args()
    if args.iters < 1 or args.warmup < 0 or (args.meta_batch is not None and args.meta_batch < 1):
        ap.error("need --iters >= 1, --warmup >= 0, --meta-batch >= 1")
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(args.threads)
    device = torch.device(args.device)
    if args.check:
        sys.exit(0 if check(device) else 1)
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    algos = [a.strip() for a in args.algos.split(",") if a.strip()]
    unknown = [w for w in workloads if w not in WORKLOADS] + [a for a in algos if a not in MAML_ALGOS]
    if unknown:
        ap.error(f"unknown workload/algo: {unknown}")
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, "
          f"warmup {args.warmup}, iters {args.iters}", flush=True)
    results = []
    for name in workloads:
        for algo in [a for a in WORKLOADS[name]["algos"] if a in algos]:
            r = bench_one(name, WORKLOADS[name], algo, args, device)
            print(f"  {name:18s} {algo:9s} {r['tasks_per_sec_median']:9.2f} tasks/s "
                  f"({r['iteration_ms_median']:.0f} ms/iter)", flush=True)
            results.append(r)
    print()
    print_table(results)
    out = {"tool": "pytorch", "torch_version": torch.__version__, "threads": args.threads,
           "interop_threads": torch.get_num_interop_threads(), "device": args.device,
           "machine": machine_info(), "warmup": args.warmup, "iters": args.iters,
           "reptile_mode": args.reptile_mode,
           "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "results": results}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
