"""Command line: ``lptsim verify | figs | ctr ...``.

Every error is one line on stderr (exit status 2 for bad input or options, 1 when a run stops);
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import time
import warnings

# Before torch loads OpenMP: spinning OpenMP threads collapse when another process holds a core (a sort of
# 40k ids: 0.4 ms passive, 30-80 ms spinning on a busy 2-core machine). A user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from pathlib import Path


def _cmd_verify(args: argparse.Namespace) -> int:
    from lptsim.atomic import write_json_atomic
    from lptsim.verify import budget, run_all
    from lptsim.verify.core import family_statement
    from lptsim.verify.report import exit_code, inconclusive_notes, summary, table, terminal_width

    if args.explain:
        return _cmd_verify_explain(args)
    if args.out:
        from lptsim.outdir import claim

        claim(Path(args.out), "verify", force=args.force)
    if args.power:
        return _cmd_verify_power(args)
    start = time.perf_counter()
    results = run_all(full=args.full, groups=args.group or None, progress=not args.quiet, seed=args.seed,
                      data=args.data)
    elapsed = time.perf_counter() - start
    print(table(results))
    notes = inconclusive_notes(results)
    if notes:
        print("\ninconclusive:\n" + "\n".join(f"  {n}" for n in notes))
    b = budget(args.full, args.seed, args.data)
    print("\n" + textwrap.fill(f"{summary(results)}; {elapsed:.1f} s (seed {args.seed}, {b.seeds} seeds per "
                               "experiment)", width=terminal_width(), break_on_hyphens=False))
    print(textwrap.fill(family_statement(results), width=terminal_width(), break_on_hyphens=False))
    print("lptsim verify --explain ID shows a check in full")
    if args.out:
        from lptsim.figs import figures_from_results

        out = Path(args.out)
        write_json_atomic(out / "verify.json", [r.to_json() for r in results])
        figures = figures_from_results(results, out)
        print(f"wrote {out / 'verify.json'} and {len(figures)} figure files")
    return exit_code(results)


def _cmd_verify_explain(args: argparse.Namespace) -> int:
    from lptsim import theory
    from lptsim.figs.results import figure_for
    from lptsim.verify import budget, find, group_of, run_all
    from lptsim.verify.report import explain, terminal_width

    group = group_of(args.explain)
    results = run_all(full=args.full, groups=[group], progress=not args.quiet, seed=args.seed, data=args.data)
    r = find(results, args.explain)
    print(explain(r, theory.STATEMENTS, figure_for(r), width=min(terminal_width(100), 120)))
    print(f"\n(seed {args.seed}, {budget(args.full, args.seed, args.data).seeds} seeds per experiment; "
          f"the {group} group run to measure it)")
    return 0


def _cmd_verify_power(args: argparse.Namespace) -> int:
    from lptsim.atomic import write_json_atomic
    from lptsim.verify import DEFAULT_GROUPS, budget
    from lptsim.verify.power import (
        check_power_table,
        exit_code,
        fault_group_table,
        per_check,
        power_table,
        run_power,
        sr_dependence,
        summary,
    )

    start = time.perf_counter()
    baseline, rows = run_power(budget(args.full, args.seed, args.data), list(args.group or DEFAULT_GROUPS),
                               progress=not args.quiet)
    power = per_check(baseline, rows)
    print("Variants (a variant is rejected when a check that passes on the real code stops passing):\n")
    print(power_table(rows))
    print("\nPower per check (what each check rejects):\n")
    print(check_power_table(power))
    print("\nFaults planted at lptsim.quant's rounding core x check group (checks that stop passing):\n")
    print(fault_group_table(rows, baseline))
    print("\nSR's unbiasedness or its mere presence:\n")
    print(sr_dependence(power))
    print(f"\n{summary(baseline, rows, power)}\n{time.perf_counter() - start:.0f} s")
    if args.out:
        out = Path(args.out)
        write_json_atomic(out / "power.json", {
            "variants": [dict(variant=r.variant, kind=r.kind, statement=r.statement, must_reject=r.must_reject,
                              why=r.why, rejected=r.rejected, failed=r.failed, refuted=r.refuted) for r in rows],
            "checks": [dict(id=c.id, group=c.group, verdict=c.verdict, status=c.status, statements=list(c.statements),
                            variants=c.variants, faults=c.faults) for c in power]})
        print(f"wrote {out / 'power.json'}")
    return exit_code(baseline, rows, power)


def _cmd_figs(args: argparse.Namespace) -> int:
    from lptsim.figs import make_all
    from lptsim.outdir import claim

    claim(Path(args.out), "figs", force=args.force)
    start = time.perf_counter()
    paths = make_all(Path(args.out), full=args.full, progress=not args.quiet, redraw=args.redraw, ctr=args.ctr)
    for p in paths:
        print(p)
    print(f"{len(paths)} files in {time.perf_counter() - start:.1f} s (index: {paths[-1]})")
    return 0


def _cmd_ctr_prepare(args: argparse.Namespace) -> int:
    from lptsim.ctr.data.prepare import prepare
    from lptsim.ctr.data.schema import SCHEMAS, Schema

    if args.dataset == "csv":
        if not args.schema:
            raise ValueError("--dataset csv needs --schema FILE.json (columns, label, numeric, categorical)")
        schema = Schema.from_json(args.schema)
    else:
        schema = SCHEMAS[args.dataset]
    if args.min_count < 1:
        raise ValueError(f"--min-count must be >= 1, got {args.min_count}")
    if args.train and not (args.valid and args.test):
        raise ValueError("--train needs --valid and --test too (or give one --input)")
    if args.input and (args.valid or args.test):
        raise ValueError("--valid/--test go with --train (pre-split files), not with --input")
    if args.train and args.split_file:
        raise ValueError("--split-file splits one --input; pre-split --train/--valid/--test files need none")
    m = prepare(args.input or args.train, schema, args.out, min_count=args.min_count, seed=args.seed,
                strict=args.strict, progress=not (args.quiet or args.silent), rejects=args.rejects, force=args.force,
                max_line_bytes=args.max_line_bytes, block_bytes=args.block_bytes, valid=args.valid, test=args.test,
                split_file=args.split_file)
    for w in m["warnings"]:
        print(f"lptsim ctr prepare: warning: {w}", file=sys.stderr)
    if args.silent:
        return 0
    rows = m["rows"]
    compressed = f" ({m['compression']})" if m["compression"] else ""
    split = m["split"]["kind"] + (f" {m['split']['path']}" if m["split"]["kind"] == "split-file" else "")
    bad = f"{m['bad_lines']:,} bad line{'' if m['bad_lines'] == 1 else 's'}"
    print(f"{args.input or args.train}{compressed}: {m['lines']:,} lines -> train {rows['train']:,}, "
          f"val {rows['val']:,}, test {rows['test']:,} rows (split: {split}); {bad} skipped; {m['seconds']:.1f} s")
    for reason, n in m["bad_lines_by_reason"].items():
        print(f"  {n:>10,}  {reason}")
    if m["first_bad_lines"]:
        print(f"first bad lines{' (all in ' + m['rejects'] + ')' if m['rejects'] else ''}:")
    for bad in m["first_bad_lines"]:
        print(f"  {bad['file'] + ':' if 'file' in bad else 'line '}{bad['line']}: {bad['reason']}")
    if not args.quiet:
        print(vocabulary_table(m["vocabulary"]))
    print(f"wrote {args.out}")
    return 0


def vocabulary_table(report: list[dict]) -> str:
    """Per-field vocabulary size and OOV rate (of the validation and test rows) as an aligned text table."""
    width = max(len("field"), *(len(r["field"]) for r in report))
    lines = [f"{'field':<{width}}  {'vocabulary':>10}  {'OOV rate':>8}"]
    lines += [f"{r['field']:<{width}}  {r['vocab_size']:>10,}  {r['oov_rate']:>8.2%}" for r in report]
    return "\n".join(lines)


# Training flags: (flag, TrainConfig field or (embedding_options, key), argparse keywords, help). Every one
# defaults to None ("not given"), so a run's configuration is: defaults < --preset < --config < given flags.
_TRAIN_FLAGS = [
    ("--model", "model", {}, "CTR model"),
    ("--method", "method", {}, "embedding method"),
    ("--bits", "bits", {"type": int}, "code width of low-precision tables"),
    ("--dim", "dim", {"type": int}, "embedding dimension"),
    ("--hidden", "hidden", {"type": int, "nargs": "*"}, "MLP hidden sizes"),
    ("--cross-layers", "cross_layers", {"type": int}, "cross layers of DCN/DCNv2"),
    ("--dropout", "dropout", {"type": float}, "MLP dropout"),
    ("--batch-norm", "batch_norm", {"action": argparse.BooleanOptionalAction}, "BatchNorm in the MLP"),
    ("--dense-init", "dense_init", {}, "dense-layer initialisation (FuxiCTR: xavier_normal)"),
    ("--epochs", "epochs", {"type": int}, "maximum epochs"),
    ("--batch-size", "batch_size", {"type": int}, "training batch size"),
    ("--shuffle", "shuffle", {"action": argparse.BooleanOptionalAction},
     "reshuffle training rows every epoch (--no-shuffle: file order)"),
    ("--lr", "lr", {"type": float}, "Adam learning rate of the dense layers"),
    ("--lr-schedule", "lr_schedule", {}, "step: divide at --lr-milestones; plateau: on validation AUC (FuxiCTR)"),
    ("--lr-milestones", "lr_milestones", {"type": int, "nargs": "*"}, "epochs after which the step schedule acts"),
    ("--lr-gamma", "lr_gamma", {"type": float}, "factor of either schedule"),
    ("--plateau-patience", "plateau_patience", {"type": int}, "plateau: epochs without a gain before a drop"),
    ("--min-lr", "min_lr", {"type": float}, "plateau: lowest learning rate"),
    ("--patience", "patience", {"type": int}, "early stopping: epochs without a better validation AUC"),
    ("--embedding-l2", "embedding_l2", {"type": float},
     "lambda of lambda/2 * ||E_r||^2 over the rows each batch touches (FuxiCTR: 1e-5)"),
    ("--weight-decay", "weight_decay", {"type": float},
     "Adam weight decay of dense layers; the same decay on the touched table rows"),
    ("--grad-clip", "grad_clip", {"type": float},
     "max 2-norm of the dense and touched-row gradients together; 0: off"),
    ("--bn-refresh", "bn_refresh", {"action": argparse.BooleanOptionalAction},
     "recompute BatchNorm statistics with one pass over train (no updates) before each evaluation"),
    ("--emb-optimizer", ("embedding_options", "optimizer"), {},
     "row optimizer of the tables (adagrad: row-wise)"),
    ("--emb-lr", ("embedding_options", "lr"), {"type": float},
     "row optimizer learning rate (default: by optimizer: sgd 0.1, adagrad 0.01, adam 1e-3)"),
    ("--emb-init-std", ("embedding_options", "init_std"), {"type": float}, "std of the tables' initial rows"),
    ("--emb-clip", ("embedding_options", "clip"), {"type": float},
     "range the initial codes cover: initial step clip / 2^(bits-1)"),
    ("--step-lr", ("embedding_options", "step_lr"), {"type": float},
     "ALPT step learning rate, relative to the initial step"),
    ("--alpt-variant", ("embedding_options", "alpt_variant"), {},
     "ALPT step gradient: second forward pass (paper) or the first backward"),
    ("--step-granularity", ("embedding_options", "step_granularity"), {},
     "one step per row, per field or per table (LPT and ALPT)"),
    ("--init-rounding", ("embedding_options", "init_rounding"), {},
     "how the initial table becomes codes"),
    ("--step-optimizer", ("embedding_options", "step_optimizer"), {},
     "ALPT's step optimizer: adam (2 floats per step), adagrad (1), sgd (none)"),
    ("--state-dtype", ("embedding_options", "state_dtype"), {},
     "steps and optimizer states of the tables, 16-bit written with stochastic rounding (default: bfloat16 for "
     "low-precision tables, float32 for fp)"),
    ("--device", "device", {}, "cpu, cuda or cuda:N (default: cuda when available)"),
    ("--seed", "seed", {}, ""),  # added by `ctr train` itself (the table sets seeds per cell)
]


def _flag_dest(flag: str) -> str:
    return flag[2:].replace("-", "_")


def _add_train_options(p: argparse.ArgumentParser, single_run: bool = True) -> None:
    from lptsim.ctr.contract import ROW_OPTIMIZERS, STEP_OPTIMIZERS
    from lptsim.ctr.models import DENSE_INITS, MODELS
    from lptsim.ctr.presets import PRESETS, embedding_defaults
    from lptsim.ctr.table import config as table
    from lptsim.ctr.trainconfig import LR_SCHEDULES, TrainConfig

    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", help="prepared folder (from `lptsim ctr prepare`)")
    src.add_argument("--synthetic", action="store_true", help="generated Criteo-like data (the default)")
    p.add_argument("--rows", type=int, default=100_000, help="synthetic rows")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic data")
    p.add_argument("--preset", choices=sorted(PRESETS), help="a peer's protocol (see lptsim.ctr.presets)")
    p.add_argument("--config", metavar="FILE", help="TOML config (e.g. from --write-config); flags override it")
    p.add_argument("--write-config", metavar="FILE",
                   help="write the resolved configuration (defaults < --preset < --config < flags) as TOML, and stop")
    defaults, emb = TrainConfig(), embedding_defaults()
    choices = {"model": sorted(MODELS), "method": list(table.METHODS), "dense_init": list(DENSE_INITS),
               "lr_schedule": list(LR_SCHEDULES), "optimizer": list(ROW_OPTIMIZERS),
               "step_optimizer": list(STEP_OPTIMIZERS), "alpt_variant": list(table.ALPT_VARIANTS),
               "step_granularity": list(table.STEP_GRANULARITIES), "init_rounding": list(table.INIT_ROUNDINGS),
               "state_dtype": list(table.STATE_DTYPES)}
    for flag, field, kw, text in _TRAIN_FLAGS:
        if field == "seed" or (not single_run and field in ("method", "bits")):
            continue
        if field == "device":
            shown = None
        elif isinstance(field, tuple):
            shown = emb.get(field[1])
        else:
            shown = getattr(defaults, field)
        if isinstance(shown, tuple):
            shown = " ".join(map(str, shown)) or "none"
        if shown is not None and not (isinstance(field, tuple) and field[1] == "lr"):
            text = f"{text} (default: {shown})"
        name = field[1] if isinstance(field, tuple) else field
        kw = {**kw, "choices": choices[name]} if name in choices else kw
        p.add_argument(flag, dest=_flag_dest(flag), default=None, help=text, **kw)
    _add_verbosity(p)
    if single_run:
        p.add_argument("--tensorboard", action="store_true",
                       help="also log each epoch to OUT/tensorboard (needs the tensorboard package)")


def _train_config(args: argparse.Namespace, method: str | None = None, bits: int | None = None):
    """The run's TrainConfig: defaults < --preset < --config FILE < the flags given."""
    from lptsim.ctr.presets import check_config, load_config, merge, preset
    from lptsim.ctr.train import TrainConfig

    values: dict = {}
    from_file = load_config(args.config) if args.config else {}
    given: dict = {}
    for flag, field, _, _ in _TRAIN_FLAGS:
        value = getattr(args, _flag_dest(flag), None)
        if value is None:
            continue
        if isinstance(field, tuple):
            given.setdefault("embedding_options", {})[field[1]] = value
        else:
            given[field] = value
    if method is not None:
        given.update(method=method, bits=bits)
    check_config(given, "the command line")
    if args.preset:
        b = given.get("bits", from_file.get("bits", 8))
        values = merge(values, preset(args.preset, b))
    values = merge(merge(values, from_file), given)
    values.setdefault("device", "cuda" if _cuda() else "cpu")
    return TrainConfig(**values)


def _write_config(args: argparse.Namespace, cfg) -> int:
    from lptsim.atomic import write_text_atomic
    from lptsim.ctr.presets import config_text

    origin = " + ".join(filter(None, [f"preset {args.preset}" if args.preset else "",
                                      f"config {args.config}" if args.config else "", "flags"]))
    write_text_atomic(Path(args.write_config), config_text(cfg, origin))
    if not args.silent:
        print(f"wrote {args.write_config}")
    return 0


def _load_data(args: argparse.Namespace, folder: Path, ctx=None):
    """The prepared data named by --data, or the synthetic default generated under ``folder``."""
    from lptsim.ctr.data.dataset import PreparedData
    from lptsim.ctr.data.synthetic import SyntheticSpec, synthetic_prepared

    if args.data:
        return PreparedData.load(args.data), None
    spec = SyntheticSpec(rows=args.rows, seed=args.data_seed)
    if ctx is not None and not ctx.main:
        ctx.barrier()  # rank 0 generates; the others then find it ready
    prepared, best = synthetic_prepared(folder, spec, progress=not args.quiet)
    if ctx is not None and ctx.main:
        ctx.barrier()
    return PreparedData.load(prepared), best


def _cmd_ctr_train(args: argparse.Namespace) -> int:
    from lptsim.atomic import write_json_atomic
    from lptsim.ctr.parallel import context
    from lptsim.ctr.train import train
    from lptsim.outdir import claim

    cfg = _train_config(args)  # options are checked before any data is generated or read
    if args.write_config:
        return _write_config(args, cfg)
    if not args.out:
        raise ValueError("--out is required (the run folder), unless --write-config")
    out = Path(args.out)
    if args.resume and not (out / "run.json").exists() and not any(out.glob("checkpoint*")):
        # said before anything is written there (no folder made, no marker left)
        raise ValueError(f"{out} holds no run to resume (no run.json or checkpoint); drop --resume to start one")
    ctx = context(args.distributed)
    if ctx.main:
        claim(out, "run", force=args.force)
    data, teacher = _load_data(args, out / "synthetic", ctx)
    metrics = train(data, cfg, out, resume=args.resume, progress=not (args.quiet or args.silent), ctx=ctx,
                    force=args.force, echo=not args.silent, tensorboard=args.tensorboard)
    if not ctx.main or args.silent:
        return 0
    if teacher is not None:
        metrics["teacher_test_auc"] = teacher
        write_json_atomic(out / "metrics.json", metrics)
    line = f"test AUC {metrics['test_auc']:.4f}, test logloss {metrics['test_logloss']:.4f}"
    if teacher is not None:
        line += f" (the synthetic teacher's AUC, the best achievable: {teacher:.4f})"
    print(f"{line}; best epoch {metrics['best_epoch']}; wrote {out / 'metrics.json'}")
    return 0


def _add_verbosity(p: argparse.ArgumentParser, quiet: str = "no progress bars (the per-epoch summary stays)") -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--quiet", action="store_true", help=quiet)
    group.add_argument("--silent", action="store_true", help="print nothing but warnings and errors")


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def _cmd_ctr_table(args: argparse.Namespace) -> int:
    from lptsim.atomic import write_text_atomic
    from lptsim.ctr import grid as table
    from lptsim.outdir import claim

    base = _train_config(args, method="fp", bits=8)
    if args.write_config:
        return _write_config(args, base)
    if not args.out:
        raise ValueError("--out is required (the table folder), unless --write-config")
    out = Path(args.out)
    table.check_grid(args.methods, args.bits, args.seeds)
    claim(out, "table", force=args.force)
    data, teacher = _load_data(args, out / "synthetic")
    progress = not (args.quiet or args.silent)
    if args.preset == "alpt-paper":  # its step learning rate depends on the bits: one base per bit width
        records = []
        for i, b in enumerate(args.bits):
            methods = args.methods if i == 0 else [m for m in args.methods if m != "fp"]
            if methods:
                records += table.run_grid(data, _train_config(args, method="fp", bits=b), methods, [b], args.seeds,
                                          out, progress=progress)
    else:
        records = table.run_grid(data, base, args.methods, args.bits, args.seeds, out, progress=progress)
    rows = table.summarize(records)
    name = Path(args.data).name if args.data else f"synthetic ({args.rows:,} rows)"
    opt = base.embedding_options.get("optimizer") or "adagrad (row-wise)"
    title = f"{base.model.upper()} on {name}, dim {base.dim}, embedding optimizer {opt}"
    md = table.to_markdown(rows, title)
    if teacher is not None:
        md += f"\nThe synthetic teacher's test AUC (the best achievable): {teacher:.4f}\n"
    write_text_atomic(out / "table.md", md)
    write_text_atomic(out / "table.csv", table.to_csv(rows))
    table.plot(rows, out / "auc_vs_bits", title)
    print(md)
    print(f"wrote {out / 'table.md'}, table.csv, auc_vs_bits.png/.pdf")
    return 0


def _cmd_ctr_evaluate(args: argparse.Namespace) -> int:
    from lptsim.atomic import write_json_atomic
    from lptsim.ctr.inference import evaluate_run

    r = evaluate_run(args.run, args.data, split=args.split, device=args.device or "cpu")
    if args.json:
        write_json_atomic(Path(args.json), r)
    if not args.silent:
        print(f"{args.run} on {r['data']} ({r['split']}, {r['rows']:,} rows): AUC {r['auc']:.4f}, logloss "
              f"{r['logloss']:.4f}, calibration {r['calibration']:.4f} (mean prediction {r['mean_prediction']:.4f} / "
              f"mean label {r['mean_label']:.4f})")
    return 0


def _cmd_ctr_predict(args: argparse.Namespace) -> int:
    from lptsim.ctr.inference import predict_file

    r = predict_file(args.run, args.input, args.out, data=args.data, device=args.device or "cpu", strict=args.strict)
    if args.silent:
        return 0
    line = f"{args.input}: {r['lines']:,} lines -> {r['rows']:,} probabilities in {r['out']}; " \
           f"{r['bad_lines']:,} bad line{'' if r['bad_lines'] == 1 else 's'} skipped"
    if "auc" in r:
        line += f"; on their labels: AUC {r['auc']:.4f}, logloss {r['logloss']:.4f}, calibration {r['calibration']:.4f}"
    elif not r["labelled"]:
        line += f"; rows without labels, mean probability {r['mean_prediction']:.4f}"
    print(line)
    for reason, n in r["bad_lines_by_reason"].items():
        print(f"  {n:>10,}  {reason}")
    for bad in r["first_bad_lines"]:
        print(f"  line {bad['line']}: {bad['reason']}")
    return 0


def _cmd_ctr_export(args: argparse.Namespace) -> int:
    from lptsim.ctr.export import export_run

    r = export_run(args.run, args.out, data=args.data)
    if not args.silent:
        print(f"wrote {r['out']} ({r['bytes']:,} bytes): tables {', '.join(r['tables'])} of a {r['method']} run "
              f"({r['bits']} bits), with the vocabulary; read it with lptsim.ctr.export.load_export")
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be an integer >= 2, got {text}")
    return value


class _HelpFormatter(argparse.HelpFormatter):
    """Shows each option's default (when it has a real one and its help does not already say it)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (action.option_strings and not any(default is v for v in (None, False, argparse.SUPPRESS))
                and "default" not in text
                and not isinstance(action, argparse._HelpAction)):
            shown = " ".join(map(str, default)) if isinstance(default, list | tuple) else "%(default)s"
            text = f"{text} (default: {shown})" if text else f"default: {shown}"
        return text


_FORCE_HELP = "write into the output folder even if it holds something else (other files are left alone)"


def build_parser() -> argparse.ArgumentParser:
    from lptsim.ctr.data.reader import BLOCK_BYTES, MAX_LINE_BYTES

    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a --debug before the command is not reset by the command's own default
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback of an error")
    parser = argparse.ArgumentParser(prog="lptsim", description=__doc__, parents=[common],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def leaf(group, name: str, **kw) -> argparse.ArgumentParser:
        return group.add_parser(name, parents=[common], formatter_class=_HelpFormatter, **kw)

    verify = leaf(sub, "verify", help="run the falsifiable checks and print a verdict table")
    verify.add_argument("--out", help="folder for verify.json and figures")
    verify.add_argument("--full", action="store_true", help="paper-quality sweep: more seeds, longer horizons")
    verify.add_argument("--group", action="append",
                        help="run only this group of checks (repeatable): quant, dr, sr, optim, methods; ctr "
                             "(trains CTR models, not in the default run); sparse (sparse tables per row-frequency "
                             "bucket, not in the default run)")
    verify.add_argument("--seed", type=int, default=0, help="master seed: changes every random draw (default 0)")
    verify.add_argument("--data", help="prepared folder for the ctr group (default: generated synthetic rows)")
    verify.add_argument("--power", action="store_true",
                        help="test the suite itself: rerun it against broken predictions and roundings")
    verify.add_argument("--explain", metavar="ID", help="run the check's group and show that check in full: statement, "
                        "source, assumptions, prediction, measurement, control, note and figure")
    verify.add_argument("--quiet", action="store_true", help="no progress bar")
    verify.add_argument("--force", action="store_true", help=_FORCE_HELP)
    verify.set_defaults(func=_cmd_verify)
    figs = leaf(sub, "figs", help="regenerate every figure (PNG and PDF) and their index.md")
    figs.add_argument("--out", required=True, help="output folder")
    figs.add_argument("--full", action="store_true", help="paper-quality: more seeds, longer horizons")
    figs.add_argument("--quiet", action="store_true", help="no progress bars")
    figs.add_argument("--ctr", action="store_true", help="also run the CTR checks (trains small CTR models, minutes)")
    figs.add_argument("--redraw", action="store_true",
                      help="redraw every figure from OUT/figs_data.json (seconds) instead of simulating")
    figs.add_argument("--force", action="store_true", help=_FORCE_HELP)
    figs.set_defaults(func=_cmd_figs)

    ctr = sub.add_parser("ctr", help="CTR pipeline: prepare data, train, tables").add_subparsers(
        dest="ctr_command", required=True)
    prep = leaf(ctr, "prepare", help="raw Criteo/Avazu/CSV file -> prepared id arrays")
    prep.add_argument("--dataset", required=True, choices=["criteo", "avazu", "csv"])
    src = prep.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", help="raw file (Criteo train.txt, Avazu train, or CSV; plain, gzip, bzip2 or zstd), "
                                     "split 8:1:1 by --seed unless --split-file")
    src.add_argument("--train", metavar="FILE", help="pre-split input: the training file (the vocabulary is fitted on "
                                                     "it alone); needs --valid and --test")
    prep.add_argument("--valid", metavar="FILE", help="pre-split input: the validation file")
    prep.add_argument("--test", metavar="FILE", help="pre-split input: the test file")
    prep.add_argument("--split-file", metavar="FILE",
                      help="the split of --input: one line per data line (header not counted): 0 train, 1 validation, "
                           "2 test, - left out")
    prep.add_argument("--out", required=True, help="output folder")
    prep.add_argument("--schema", help="JSON schema for --dataset csv")
    prep.add_argument("--min-count", type=int, default=2, help="rarer training values map to the OOV id")
    prep.add_argument("--seed", type=int, default=0, help="seed of the random 8:1:1 split")
    prep.add_argument("--strict", action="store_true",
                      help="stop at the first bad line (and refuse an empty or one-class split)")
    prep.add_argument("--rejects", metavar="FILE", help="write every bad line here: line number, reason, text")
    prep.add_argument("--max-line-bytes", type=_positive, default=MAX_LINE_BYTES,
                      help=f"a longer line is a bad line (default: {MAX_LINE_BYTES:,})")
    prep.add_argument("--block-bytes", type=_positive, default=BLOCK_BYTES, help=argparse.SUPPRESS)
    _add_verbosity(prep, quiet="no progress bar and no vocabulary table (the summary stays)")
    prep.add_argument("--force", action="store_true", help=_FORCE_HELP)
    prep.set_defaults(func=_cmd_ctr_prepare)
    tr = leaf(ctr, "train", help="train a CTR model (synthetic data unless --data)")
    _add_train_options(tr)
    tr.add_argument("--seed", type=int, default=None, help="seed of initialisation, order and SR draws (default: 0)")
    tr.add_argument("--out", help="run folder (checkpoints, logs, metrics.json); required unless --write-config")
    tr.add_argument("--resume", action="store_true", help="continue the run in --out")
    tr.add_argument("--distributed", action="store_true",
                    help="under torchrun: shard the tables over the ranks, data-parallel dense layers")
    tr.add_argument("--force", action="store_true", help=_FORCE_HELP)
    tr.set_defaults(func=_cmd_ctr_train)
    tab = leaf(ctr, "table", help="the paper-style table: methods x bits x seeds")
    _add_train_options(tab, single_run=False)
    tab.add_argument("--methods", nargs="+", default=["fp", "lpt-dr", "lpt-sr", "alpt", "alpt-1pass", "lsq"],
                     help="table methods (fp runs once, at 8 bits)")
    tab.add_argument("--bits", dest="bits", type=int, nargs="+", default=[2, 4, 8], help="code widths")
    tab.add_argument("--seeds", type=int, default=3, help="seeds per cell (0, 1, ...)")
    tab.add_argument("--out", help="table folder (runs, table.md/.csv, plot); required unless --write-config")
    tab.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    tab.add_argument("--force", action="store_true", help=_FORCE_HELP)
    tab.set_defaults(func=_cmd_ctr_table)
    ev = leaf(ctr, "evaluate", help="score a trained run on a prepared folder: AUC, logloss, calibration")
    ev.add_argument("--run", required=True, help="run folder (from `lptsim ctr train`)")
    ev.add_argument("--data", required=True, help="prepared folder with the run's vocabulary (e.g. its own)")
    ev.add_argument("--split", default="test", choices=["train", "val", "test"], help="split to score")
    ev.add_argument("--json", metavar="FILE", help="also write the scores as JSON")
    ev.add_argument("--device", help="cpu or cuda (default: cpu)")
    ev.add_argument("--silent", action="store_true", help="print nothing but warnings and errors")
    ev.set_defaults(func=_cmd_ctr_evaluate)
    pr = leaf(ctr, "predict", help="probabilities for raw rows, through the run's saved vocabulary")
    pr.add_argument("--run", required=True, help="run folder (from `lptsim ctr train`)")
    pr.add_argument("--input", required=True, help="raw rows in the training file's format, with or without the "
                                                   "label column (any compression)")
    pr.add_argument("--out", required=True, help="CSV to write: line,label,probability (or line,probability)")
    pr.add_argument("--data", help="the prepared folder the run was trained on (default: the one the run records)")
    pr.add_argument("--strict", action="store_true", help="stop at the first bad line")
    pr.add_argument("--device", help="cpu or cuda (default: cpu)")
    pr.add_argument("--silent", action="store_true", help="print nothing but warnings and errors")
    pr.set_defaults(func=_cmd_ctr_predict)
    ex = leaf(ctr, "export", help="the run's tables as codes + steps + vocabulary (safetensors)")
    ex.add_argument("--run", required=True, help="run folder (from `lptsim ctr train`)")
    ex.add_argument("--out", required=True, help="file to write (.safetensors); format in lptsim.ctr.export")
    ex.add_argument("--data", help="the prepared folder the run was trained on (default: the one the run records)")
    ex.add_argument("--silent", action="store_true", help="print nothing but warnings and errors")
    ex.set_defaults(func=_cmd_ctr_export)
    return parser


def _one_line(exc: BaseException) -> str:
    return " / ".join(ln.strip() for ln in str(exc).splitlines() if ln.strip()) or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    name = "lptsim " + " ".join(filter(None, [args.command, getattr(args, "ctr_command", None)]))
    if getattr(args, "debug", False):
        return args.func(args)

    def show_warning(message, category, *rest) -> None:  # one line, no source excerpt
        print(f"{name}: warning: {_one_line(message) if isinstance(message, Warning) else message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show_warning
        try:
            return args.func(args)
        except KeyboardInterrupt:
            print(f"{name}: interrupted", file=sys.stderr)
            return 130
        except Exception as exc:  # noqa: BLE001 - the CLI's promise: one line, no traceback (unless --debug)
            from lptsim.ctr.train import TrainingError

            if isinstance(exc, TrainingError):
                print(f"{name}: stopped: {_one_line(exc)}", file=sys.stderr)
                return 1
            if isinstance(exc, ValueError | OSError):  # bad input, options, files or folders
                print(f"{name}: error: {_one_line(exc)}", file=sys.stderr)
                return 2
            print(f"{name}: internal error: {type(exc).__name__}: {_one_line(exc)} (run again with --debug for the "
                  "traceback, and please report it)", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
