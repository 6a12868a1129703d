"""Run every stage micro-benchmark, each in its own process, then write bench/out/micro.md.

    python -m bench.all                 # everything (about 50 min on 2 busy cores, 10 GB of disk in bench/out)
    python -m bench.all --only query,memory
    python -m bench.report              # rewrite bench/out/micro.md from the JSON already there

Each benchmark runs as a separate process so that one's memory or threads never colour another's
numbers (bench.memory reports the peak RSS of its own process). On a shared machine, prefix with
`nice -n 10`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from shazamlet.model.checkpoint import BUNDLED_MODEL

ORDER = ["throughput", "hop_offset", "query", "table1", "scale", "memory", "ivf", "between", "landmarks", "presence", "style"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(ORDER), help="comma-separated subset of " + ",".join(ORDER))
    ap.add_argument("--quick", action="store_true", help="smoke-test sizes (not for RESULTS.md)")
    args = ap.parse_args()
    quick = {"throughput": ["--quick", "--no-compile"], "query": ["--songs", "50", "--repeat", "5", "--attempts", "1"],
             "table1": ["--n", "5000", "--dim", "256", "--queries", "10"],
             "scale": ["--base-songs", "50", "--configs", "22x64", "--large", ""], "memory": ["--songs", "50", "--answers", "5"],
             "ivf": ["--songs", "50", "--queries", "50"], "hop_offset": ["--files", "2"],
             "between": ["--songs", "2", "--seconds", "20", "--rounds", "1", "--clips", "3"],
             "landmarks": ["--songs", "2", "--seconds", "20", "--rounds", "1", "--clips", "3"],
             "presence": ["--songs", "2", "--seconds", "20", "--rounds", "1", "--clips", "3"],
             "style": ["--songs", "2", "--seconds", "20", "--rounds", "1", "--clips", "3"]}
    if args.quick:  # smoke-test numbers go to bench/out/quick/, never into RESULTS.md
        os.environ["SHAZAMLET_BENCH_OUT"] = str(Path(__file__).resolve().parent / "out" / "quick")
    model = BUNDLED_MODEL
    extra = []
    if model.exists() and not args.quick:  # these need a trained model
        extra = [("hop_offset", ["--model", str(model)]), ("hop_accuracy", ["--model", str(model)])]
    failed = []
    for name in [n for n in ORDER if n in args.only.split(",")]:
        full = {"scale": ["--large", "10000,50000"],  # build 10 000 and 50 000 songs too (~25 min, 8 GB)
                "presence": ["--songs", "30", "--seconds", "60", "--rounds", "2"],  # more songs than candidates
                "style": ["--songs", "30", "--seconds", "60", "--rounds", "2"]}
        cmd = [sys.executable, "-W", "ignore", "-m", f"bench.{name}"] + (quick[name] if args.quick else full.get(name, []))
        print(f"\n=== {' '.join(cmd[1:])}", flush=True)
        t = time.perf_counter()
        if subprocess.run(cmd).returncode != 0:
            failed.append(name)
        print(f"=== {name}: {time.perf_counter() - t:.0f} s", flush=True)
    for name, flags in extra if "hop_offset" in args.only.split(",") else []:
        cmd = [sys.executable, "-W", "ignore", "-m", f"bench.{name}"] + flags
        print(f"\n=== {' '.join(cmd[1:])}", flush=True)
        if subprocess.run(cmd).returncode != 0:
            failed.append(name)
    from bench.common import OUT
    from bench.report import write_results

    write_results(OUT / "micro.md")
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
