"""Compile every kernel specialization the package can launch ahead of time, without a GPU.

    python -m lptsim.ctr.kernels.aot [--arch sm_80 sm_90] [--quick] [--jobs N]

Each specialization (bits, method, row optimizer, step mode and granularity, dim) goes through
Triton's full pipeline to a cubin with its bundled ptxas, for a ``GPUTarget("cuda", 80|90, 32)``,
with the launch options the package uses (``num_warps``, ``enable_fp_fusion=False``). Prints one
line per specialization: kernel, configuration, registers, spills (local memory / stack bytes),
shared memory and the number of ``fma.rn`` instructions in the PTX. Exits 1 on a compile error, a
spill, or any FMA (the numerical contract of :mod:`lptsim.ctr.kernels.triton_kernels` forbids
contraction). Integer values that change in training (seed, step count, row_offset) are device
tensors and ``n`` is ``do_not_specialize``, so no integer value creates another specialization;
pointers are compiled 16-byte aligned, as torch allocates them.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from tqdm import tqdm

from lptsim.ctr.contract import OPT_CODE, ROW_OPTIMIZERS, STEP_MODE

BITS = tuple(range(1, 9))
DIMS = (16, 5, 64, 13, 1, 128, 40, 8)  # odd and even; the row's byte count and the loop trip counts change
METHODS = ("lpt-dr", "lpt-sr", "alpt-sgd", "alpt-adam", "alpt-adagrad")
OPTIMIZERS = ROW_OPTIMIZERS


@dataclass(frozen=True)
class Spec:
    kernel: str
    bits: int
    dim: int
    step_kind: int  # 0 per table, 1 per row, 2 indexed
    method: str = ""
    opt: str = ""
    phase: int = 0  # update kernel: 0 one pass, 1/2 two-pass ALPT's stage/commit, 3/4 shared steps' gradient/write
    state: str = "fp32"  # steps and optimizer state: fp32 or bf16
    long: bool = True  # update kernels: runs longer than 32 possible (a batch above 32 ids)

    def label(self) -> str:
        if self.kernel == "long_run":
            return f"dim={self.dim:<3d} launch={'first' if self.step_kind == 0 else 'later'}"
        if self.kernel == "init_rows":
            return f"bits={self.bits or 'fp':<2} dim={self.dim:<3d} {self.method}"
        if self.kernel == "shared_step":
            return f"{self.method:12s} {self.state} long={int(self.long)}"
        kind = ("table", "row", "indexed")[self.step_kind]
        extra = (f" {self.method:12s} {self.opt:7s} phase={self.phase} long={int(self.long)}"
                 if self.kernel == "fused_update" else "")
        return f"bits={self.bits} dim={self.dim:<3d} step={kind:7s} {self.state}{extra}"


def specializations(quick: bool = False) -> list[Spec]:
    """All (or, with ``quick``, a covering subset of) the specializations the package launches."""
    specs = []
    for i, (bits, kind) in enumerate(itertools.product(BITS, (0, 1, 2))):
        dim = DIMS[i % len(DIMS)]
        state = ("fp32", "bf16")[i % 2]
        specs += [Spec("gather_dequant", bits, dim, kind, state=state),
                  Spec("gather_sum", bits, DIMS[(i + 3) % len(DIMS)], kind, state=state)]
    specs += [Spec("long_run", 0, dim, level) for dim in sorted(set(DIMS)) for level in (0, 1)]
    i = 0
    for bits, method, opt in itertools.product(BITS, METHODS, OPTIMIZERS):
        if method.startswith("lpt"):
            variants = [(kind, 0) for kind in (0, 1, 2)]
        else:  # ALPT, a step per row: one pass, or two-pass's stage and commit; a shared step (per table or
            # field, rotating): the stage, the rows' step gradients and the write-back
            variants = [(1, phase) for phase in (0, 1, 2)] + [((0, 2)[bits % 2], phase) for phase in (1, 3, 4)]
        for kind, phase in variants:
            for state in ("fp32", "bf16"):  # batches of at most 32 ids (no long runs) in one case of 11
                specs.append(Spec("fused_update", bits, DIMS[i % len(DIMS)], kind, method, opt, phase, state,
                                  long=i % 11 != 5))
            i += 1
    specs += [Spec("shared_step", 0, 1, 0, method, state=state, long=long) for method in METHODS[2:]
              for state in ("fp32", "bf16") for long in (True, False)]
    # the keyed initial rows (init_rows): FP32 values, or codes of every width, rounded to nearest or with SR
    specs += [Spec("init_rows", 0, 16, 0, "fp")] + [
        Spec("init_rows", bits, dim, 0, rounding) for bits in (*BITS, 16) for dim in (16, 13)
        for rounding in ("nearest", "stochastic")]
    if quick:  # every bits, method, optimizer, step kind and phase still appears
        specs = [s for j, s in enumerate(specs) if s.kernel.startswith("gather") and j % 8 == 0
                 or s.kernel == "long_run" and s.dim in (13, 16, 128) or s.kernel == "shared_step" and s.long
                 or s.kernel == "fused_update" and (j % 9 == 0 if s.phase < 3 else j % 29 == 0)
                 or s.kernel == "init_rows" and s.dim == 16 and s.bits in (0, 2, 3, 8)]
    return specs


def _step_mode(method: str) -> int:
    """The contract's STEP_MODE of an AOT method name (``alpt-<step optimizer>``; LPT: fixed steps)."""
    return STEP_MODE[method.split("-", 1)[1] if method.startswith("alpt-") else None]


def _row_bytes(bits: int, dim: int) -> tuple[int, int]:
    per = 8 // math.gcd(8, bits)
    padded = -(-dim // per) * per if bits < 8 else dim
    return padded, padded * bits // 8


def _source(spec: Spec):
    from triton.compiler import ASTSource

    from lptsim.ctr.kernels import run_sum_kernels as rk
    from lptsim.ctr.kernels import triton_kernels as tk
    from lptsim.ctr.kernels import update_kernels as uk

    code_t = "*i8" if spec.bits == 8 else "*u8"
    st = "*" + spec.state  # steps and optimizer state
    idx_t = "*i64" if spec.step_kind == 2 else st  # the steps tensor stands in when there is no index
    padded, row_bytes = _row_bytes(max(spec.bits, 1), spec.dim)
    from lptsim.ctr.kernels import BLOCK, CHUNK, gather_block, update_block

    dp, gblock = gather_block(spec.dim)
    common = dict(D=spec.dim, ROW_BYTES=row_bytes, BITS=spec.bits, STEP_KIND=spec.step_kind)  # not long_run
    if spec.kernel == "gather_dequant":
        fn = tk.gather_dequant_kernel
        sig = dict(ids_ptr="*i64", codes_ptr=code_t, steps_ptr=st, step_idx_ptr=idx_t, out_ptr="*fp32",
                   keys_ptr="*i32", ok_ptr="*i32", n="i32", rows="i32")
        const = dict(common, DP=dp, BLOCK=gblock, KEYS=spec.step_kind != 1)  # training and evaluation lookups
    elif spec.kernel == "long_run":
        fn = rk.long_run_kernel
        sig = dict(sorted_ptr="*i32", perm_ptr="*i64", src_ptr="*fp32", out_ptr="*fp32", n="i32", stride="i32")
        const = dict(FIRST=spec.step_kind == 0, D=spec.dim, DP=dp, CHUNK=CHUNK)
    elif spec.kernel == "gather_sum":
        fn = tk.gather_sum_kernel
        sig = dict(ids_ptr="*i64", bag_starts_ptr="*i64", codes_ptr=code_t, steps_ptr=st, step_idx_ptr=idx_t,
                   out_ptr="*fp32")
        const = dict(common, DP=dp)
    elif spec.kernel == "libdevice_part":
        from lptsim.ctr.kernels import init_rows as ir

        fn = ir.libdevice_part_kernel
        sig = dict(u_ptr="*fp64", out_ptr="*fp64", n="i32")
        const = dict(BLOCK=ir.BLOCK)
    elif spec.kernel == "init_rows":
        from lptsim.ctr.contract import INIT_UPDATE
        from lptsim.ctr.kernels import init_rows as ir

        fn = ir._init_kernel
        quant = spec.bits > 0
        sig = dict(out_ptr="*i16" if quant else "*fp32", key_ptr="*i64", n="i32", std="fp32", step0="fp32",
                   qmin="fp32", qmax="fp32")
        const = dict(INIT_UPDATE_T=INIT_UPDATE, DIM=spec.dim, PADDED=padded if 0 < spec.bits < 8 else spec.dim,
                     QUANT=quant, STOCHASTIC=spec.method == "stochastic", BLOCK=ir.BLOCK)
    elif spec.kernel == "shared_step":
        fn = uk.shared_step_kernel
        sig = dict(keys_ptr="*i32", perm_ptr="*i64", gstep_ptr="*fp32", top_ptr="*fp32", steps_ptr=st,
                   step_m_ptr=st, step_v_ptr=st, key_ptr="*i64", updates_ptr="*i64", n="i32", num_steps="i32",
                   top_stride="i32")
        for name in ("step_lr", "min_step", "sb1", "one_minus_sb1", "sb2", "one_minus_sb2", "step_eps"):
            sig[name] = "fp32"
        const = dict(STEP_MODE=_step_mode(spec.method), BF16=spec.state == "bf16", BLOCK=BLOCK, CHUNK=CHUNK,
                     LONG=spec.long)
    else:
        from lptsim.quant import QuantSpec

        fn = uk.fused_update_kernel
        q = QuantSpec(spec.bits)
        sig = dict(sorted_ptr="*i32", perm_ptr="*i64", grad_ptr="*fp32", top_ptr="*fp32", wnew_ptr="*fp32",
                   gstep_ptr="*fp32", codes_ptr=code_t, steps_ptr=st, step_idx_ptr=idx_t, sum_sq_ptr=st,
                   exp_avg_ptr=st, exp_avg_sq_ptr=st, step_m_ptr=st, step_v_ptr=st, key_ptr="*i64",
                   updates_ptr="*i64", adam_steps_ptr="*i64", n="i32", top_stride="i32")
        for name in ("lr", "eps", "b1", "one_minus_b1", "b2", "one_minus_b2", "step_lr", "grad_scale", "min_step",
                     "sb1", "one_minus_sb1", "sb2", "one_minus_sb2", "step_eps"):
            sig[name] = "fp32"
        const = dict(common, PADDED=padded, QMIN=float(q.qmin), QMAX=float(q.qmax),
                     OPT=OPT_CODE[spec.opt], STEP_MODE=_step_mode(spec.method), STOCHASTIC=spec.method != "lpt-dr",
                     BLOCK=update_block(spec.dim), DP=dp, CHUNK=CHUNK, LONG=spec.long, PHASE=spec.phase,
                     BF16=spec.state == "bf16")
    for name in const:
        sig[name] = "constexpr"
    attrs = {(fn.arg_names.index(k),): [["tt.divisibility", 16]] for k, v in sig.items() if v.startswith("*")}
    return ASTSource(fn, sig, constexprs=const, attrs=attrs)


def _cuobjdump() -> str:
    import triton

    return os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")


def compile_one(spec: Spec, arch: int, extra_options: dict | None = None) -> dict:
    """Compile one specialization; return its resource usage (or the error)."""
    import triton
    from triton.backends.compiler import GPUTarget

    from lptsim.ctr.kernels import LAUNCH, UPDATE_LAUNCH, long_run_launch
    from lptsim.ctr.kernels.init_rows import INIT_LAUNCH

    base = {"fused_update": UPDATE_LAUNCH, "long_run": long_run_launch(spec.dim),
            "init_rows": INIT_LAUNCH, "libdevice_part": INIT_LAUNCH}.get(spec.kernel, LAUNCH)
    options = dict(base, **(extra_options or {}))
    try:
        compiled = triton.compile(_source(spec), target=GPUTarget("cuda", arch, 32), options=options)
    except Exception as exc:  # noqa: BLE001 (reported in the table; the run fails)
        return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]}
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(compiled.asm["cubin"])
        f.flush()
        usage = subprocess.run([_cuobjdump(), "-res-usage", f.name], capture_output=True, text=True, check=True).stdout
    field = {k: int(v) for k, v in re.findall(r"\b(REG|STACK|SHARED|LOCAL):(\d+)", usage)}
    return {"regs": field.get("REG", -1), "spill": field.get("LOCAL", 0) + field.get("STACK", 0),
            "shared": compiled.metadata.shared, "fma": len(re.findall(r"\bfma\.rn", compiled.asm["ptx"]))}


def _job(args):
    spec, arch = args
    return spec, arch, compile_one(spec, arch)


def run(archs: list[int], quick: bool = False, jobs: int = 1, out=sys.stdout) -> int:
    """Compile and print the table; return the number of failures (compile errors, spills, FMA)."""
    import triton

    os.environ.pop("TRITON_INTERPRET", None)  # compiling, not interpreting
    print(f"Triton {triton.__version__} ({os.path.dirname(triton.__file__)}), Python {sys.version.split()[0]}; "
          f"targets {', '.join(f'sm_{a}' for a in archs)}", file=out)
    work = [(s, a) for a in archs for s in specializations(quick)]
    # A full table takes minutes to an hour: a progress bar on stderr (only on a terminal; logs stay clean).
    progress = dict(total=len(work), desc="compiling", unit="kernel", file=sys.stderr, disable=None)
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            results = list(tqdm(pool.map(_job, work), **progress))
    else:
        results = [_job(w) for w in tqdm(work, **progress)]
    print(f"{'arch':6s} {'kernel':15s} {'configuration':66s} {'regs':>4s} {'spill':>5s} {'smem':>5s} {'fma':>4s}  "
          "status", file=out)
    failures = 0
    libdevice = {a: compile_one(Spec("libdevice_part", 0, 1, 0), a) for a in archs} if any(
        s.kernel == "init_rows" for s, _ in work) else {}
    for arch, r in libdevice.items():
        print(f"sm_{arch}: libdevice's float64 log and cos alone: {r}; init_rows may have these FMAs and this stack, "
              "no more", file=out)
    for spec, arch, r in results:
        if "error" in r:
            failures += 1
            print(f"sm_{arch:<3d} {spec.kernel:15s} {spec.label():66s} {'-':>4s} {'-':>5s} {'-':>5s} {'-':>4s}  "
                  f"FAIL {r['error']}", file=out)
            continue
        allow = libdevice[arch] if spec.kernel == "init_rows" and "error" not in libdevice[arch] else {}
        bad = [w for w, b in (("spills", r["spill"] > allow.get("spill", 0)), ("FMA", r["fma"] > allow.get("fma", 0)))
               if b]
        failures += bool(bad)
        print(f"sm_{arch:<3d} {spec.kernel:15s} {spec.label():66s} {r['regs']:4d} {r['spill']:5d} {r['shared']:5d} "
              f"{r['fma']:4d}  {'FAIL ' + ', '.join(bad) if bad else 'ok'}", file=out)
    for arch in archs:
        compiled = [(s, r) for s, a, r in results if a == arch and "error" not in r]
        mine = [r for _, r in compiled]
        n = sum(a == arch for _, a, _ in results)
        if mine:
            init = sum(s.kernel == "init_rows" for s, _ in compiled)
            print(f"sm_{arch}: {n} specializations, {len(mine)} compiled; max registers "
                  f"{max(r['regs'] for r in mine)}, spills {sum(r['spill'] > 0 for r in mine)}, "
                  f"with FMA {sum(r['fma'] > 0 for r in mine)} (init_rows, whose libdevice share is allowed: "
                  f"{init})", file=out)
    print(f"{failures} failure(s)", file=out)
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", nargs="+", default=["sm_80", "sm_90"], help="targets, e.g. sm_80 sm_90")
    parser.add_argument("--quick", action="store_true", help="a covering subset (every bits/method/optimizer)")
    parser.add_argument("--jobs", type=int, default=1, help="compile in this many processes")
    args = parser.parse_args(argv)
    archs = []
    for a in args.arch:
        m = re.fullmatch(r"sm_?(\d+)a?", a)
        if not m:
            parser.error(f"--arch: expected sm_80, sm_90, ..., got {a!r}")
        archs.append(int(m.group(1)))
    try:
        import triton  # noqa: F401
    except ImportError:
        print("aot: Triton is not installed", file=sys.stderr)
        return 2
    return 1 if run(archs, args.quick, args.jobs) else 0


if __name__ == "__main__":
    sys.exit(main())
