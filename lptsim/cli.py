"""Command line: ``lptsim verify | figs | ctr ...``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _cmd_verify(args: argparse.Namespace) -> int:
    from lptsim.verify import run_all, table, write_json_atomic

    start = time.perf_counter()
    results = run_all(full=args.full, groups=args.group or None, progress=not args.quiet)
    elapsed = time.perf_counter() - start
    print(table(results))
    failed = [r for r in results if not r.passed]
    print(f"\n{len(results) - len(failed)} passed, {len(failed)} failed in {elapsed:.1f} s")
    if args.out:
        from lptsim.figs import figures_from_results

        out = Path(args.out)
        write_json_atomic(out / "verify.json", [r.to_json() for r in results])
        figures = figures_from_results(results, out)
        print(f"wrote {out / 'verify.json'} and {len(figures)} figure files")
    return 1 if failed else 0


def _cmd_figs(args: argparse.Namespace) -> int:
    from lptsim.figs import make_all

    start = time.perf_counter()
    paths = make_all(Path(args.out), full=args.full, progress=not args.quiet)
    for p in paths:
        print(p)
    print(f"{len(paths)} files in {time.perf_counter() - start:.1f} s")
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
    m = prepare(args.input, schema, args.out, min_count=args.min_count, seed=args.seed, strict=args.strict,
                progress=not args.quiet)
    rows = m["rows"]
    print(f"{args.input}: {m['lines']:,} lines -> train {rows['train']:,}, val {rows['val']:,}, "
          f"test {rows['test']:,} rows; {m['bad_lines']:,} malformed lines skipped; {m['seconds']:.1f} s")
    for bad in m["first_bad_lines"]:
        print(f"  line {bad['line']}: {bad['reason']}")
    print(f"wrote {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lptsim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify", help="run the falsifiable checks and print a verdict table")
    verify.add_argument("--out", help="folder for verify.json and figures")
    verify.add_argument("--full", action="store_true", help="paper-quality sweep: more seeds, longer horizons")
    verify.add_argument("--group", action="append", help="run only this group of checks (repeatable)")
    verify.add_argument("--quiet", action="store_true", help="no progress bar")
    verify.set_defaults(func=_cmd_verify)
    figs = sub.add_parser("figs", help="regenerate every figure (PNG and PDF)")
    figs.add_argument("--out", required=True, help="output folder")
    figs.add_argument("--full", action="store_true", help="paper-quality: more seeds, longer horizons")
    figs.add_argument("--quiet", action="store_true", help="no progress bars")
    figs.set_defaults(func=_cmd_figs)

    ctr = sub.add_parser("ctr", help="CTR pipeline: prepare data, train, tables").add_subparsers(
        dest="ctr_command", required=True)
    prep = ctr.add_parser("prepare", help="raw Criteo/Avazu/CSV file -> prepared id arrays")
    prep.add_argument("--dataset", required=True, choices=["criteo", "avazu", "csv"])
    prep.add_argument("--input", required=True, help="raw file (Criteo train.txt, Avazu train, or CSV)")
    prep.add_argument("--out", required=True, help="output folder")
    prep.add_argument("--schema", help="JSON schema for --dataset csv")
    prep.add_argument("--min-count", type=int, default=2, help="rarer training values map to the OOV id")
    prep.add_argument("--seed", type=int, default=0, help="seed of the 8:1:1 split")
    prep.add_argument("--strict", action="store_true", help="stop at the first malformed line")
    prep.add_argument("--quiet", action="store_true", help="no progress bar")
    prep.set_defaults(func=_cmd_ctr_prepare)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as exc:  # bad input: a message, not a traceback
        print(f"lptsim {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
