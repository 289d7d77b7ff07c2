"""python -m bench [--quick | --full] [--only NAME,...] [--json PATH] [--requests N] [--reseed]

Prints one table of every figure and writes it as JSON (and the same table as Markdown beside
it). Exit status: 0 when everything was measured, goals met or not (a MISSED goal is printed,
it is a result); 1 when a benchmark could not measure; 2 on a bad command line.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from bench import framework, registry

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_JSON = RESULTS / "latest.json"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure DR Console: each figure against a baseline taken in the same run.",
        epilog="See bench/README.md for what each figure means.",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick",
                      help="smaller scale and fewer samples: minutes, for a check")
    mode.add_argument("--full", dest="mode", action="store_const", const="full",
                      help="the scale the issue sets and more samples (the default)")
    p.set_defaults(mode="full")
    p.add_argument("--only", metavar="NAME,...",
                   help="run only these benchmarks (comma-separated; --list shows them)")
    p.add_argument("--json", metavar="PATH", type=Path, default=DEFAULT_JSON,
                   help="where to write the JSON report (default: bench/results/latest.json); "
                        "the Markdown table goes beside it with the suffix .md")
    p.add_argument("--requests", metavar="N", type=int,
                   help="samples per timed figure, instead of the mode's default")
    p.add_argument("--reseed", action="store_true",
                   help="rebuild seeded data even when a seed of the same scale exists")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.requests is not None and args.requests < 3:
        print("python -m bench: --requests must be at least 3", file=sys.stderr)
        return 2
    registry.discover()
    if args.list:
        for b in registry.benchmarks():
            print(f"{b.name:20} {b.title}")
        return 0
    try:
        selected = registry.select(args.only.split(",") if args.only else None)
    except KeyError as exc:
        known = ", ".join(b.name for b in registry.benchmarks())
        print(f"python -m bench: no benchmark named {exc.args[0]} (known: {known})",
              file=sys.stderr)
        return 2
    if not selected:
        print("python -m bench: no benchmark selected", file=sys.stderr)
        return 2

    ctx = framework.Context(mode=args.mode, requests=args.requests, reseed=args.reseed)
    command = "python -m bench " + shlex.join(argv if argv is not None else sys.argv[1:])
    report = framework.run(selected, ctx, command=command.strip())

    print()
    print(framework.format_table(report.rows))
    print()
    print(framework.summary(report))
    json_path, md_path = framework.write(report, args.json)
    print(f"Wrote {_show(json_path)} and {_show(md_path)}.")
    return 1 if report.errors else 0


def _show(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
