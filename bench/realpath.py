"""The real path, before and after: one command, one table, both trees in the same run on the same machine.

    python -m bench.realpath --before 87bf6c3            # ~30 min the first time (libraries), then ~15
    python -m bench.realpath --before 87bf6c3 --quick    # smoke test: small libraries, few clips
    python -m bench.realpath --before 87bf6c3 --profile babble3   # + cProfile of the after-tree

Micro-benchmarks of one stage measured what each change cost, and projected to an idle machine they
said 13-36 ms per answer while a user's `shazamlet identify` took 121 (issue 21). This measures what
the user runs: the CLI's own loader and `Recognizer.identify_file` on real corpus music through the
trainer's room chain, `library add` through the CLI, the CLI's start-up, and the window listening.
CPU time tolerates a shared machine; before and after alternate so a burst of load hits both.

Writes bench/out/realpath.md and .json (realpath-quick.* with --quick); RESULTS.md quotes the table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bench.realpath_music import Music, add_music, clips, parts, whole_tracks
from bench.realpath_trees import (BENCH, Tree, after_tree, before_tree, library, model_file, run_cli,
                                  run_worker)

CONDITIONS = ("clean3", "mic3", "babble3")
FULL = {"small": 100, "large": 1000, "positions": 80, "rounds": 4, "add_min": 60, "add_rounds": 2,
        "startup_runs": 5, "gui_s": 30.0, "gui_rounds": 2}
QUICK = {"small": 10, "large": 40, "positions": 6, "rounds": 1, "add_min": 5, "add_rounds": 1,
         "startup_runs": 2, "gui_s": 8.0, "gui_rounds": 1}


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) if xs else float("nan")


def orders(n: int, trees: tuple[Tree, Tree]) -> list[tuple[Tree, ...]]:
    """Before/after alternating, ABBA: neither tree always goes first into a burst of load."""
    return [trees if i % 2 == 0 else trees[::-1] for i in range(n)]


def cond_of(clip: str) -> str:
    return Path(clip).parent.name


# -- the measurements -----------------------------------------------------------------------------
def measure_identify(trees, model, libs: dict[str, dict[str, Path]], clip_dirs: dict[str, Path],
                     size: dict, warmup: dict[str, Path]) -> dict:
    """Per tree, library and condition: CPU ms per answer, each clip's answer, and the truth."""
    out = {t.name: {lib: [] for lib in libs} for t in trees}
    jobs = []
    for lib, folder in clip_dirs.items():
        positions = json.loads((folder / "clips.json").read_text())["clips"]
        for r, order in enumerate(orders(size["rounds"], trees)):
            chunk = positions[r:: size["rounds"]]
            files = [str(folder / c / f"{p['i']:03d}.wav") for p in chunk for c in CONDITIONS]
            jobs += [(lib, tree, files) for tree in order]
    truth = {lib: {str(d / c / f"{p['i']:03d}.wav"): p["song"] for p in json.loads((d / "clips.json").read_text())["clips"]
                   for c in CONDITIONS} for lib, d in clip_dirs.items()}
    for lib, tree, files in tqdm(jobs, desc="identify (worker processes)", unit="proc"):
        res = run_worker(tree, model, {"kind": "identify", "library": str(libs[lib][tree.name]), "clips": files,
                                       "warmup": str(warmup[lib])})
        for row in res["rows"]:
            row["cond"], row["truth"] = cond_of(row["clip"]), truth[lib][row["clip"]]
            out[tree.name][lib].append(row)
    return out


def measure_add(trees, model, music: Music, rounds: int) -> dict:
    """`library add -q` of fresh music into a fresh library through the CLI: wall, CPU, x realtime."""
    out = {t.name: [] for t in trees}
    for order in tqdm(orders(rounds, trees), desc="library add (CLI)", unit="round"):
        for tree in order:
            with tempfile.TemporaryDirectory(prefix="realpath-add-") as tmp:
                ran = run_cli(tree, model, ["--library", str(Path(tmp) / "lib"), "library", "add", "-q", str(music.folder)])
            out[tree.name].append({"wall_s": ran.wall_s, "cpu_s": ran.cpu_s, "audio_s": music.seconds})
    return out


def measure_startup(trees, model, lib: dict[str, Path], clip: Path, runs: int) -> dict:
    """Wall time of `python -m shazamlet --library L identify clip` from exec to exit: the user's wait."""
    out = {t.name: [] for t in trees}
    for order in tqdm(orders(runs, trees), desc="identify start-up (CLI)", unit="round"):
        for tree in order:
            ran = run_cli(tree, model, ["--library", str(lib[tree.name]), "identify", str(clip)])
            out[tree.name].append({"wall_s": ran.wall_s, "cpu_s": ran.cpu_s, "answer": ran.out.strip()})
    return out


def measure_gui(trees, model, lib: dict[str, Path], stream: Path, seconds: float, rounds: int) -> dict:
    out = {t.name: [] for t in trees}
    for order in tqdm(orders(rounds, trees), desc="window listening", unit="round"):
        for tree in order:
            out[tree.name].append(run_worker(tree, model, {"kind": "gui", "library": str(lib[tree.name]),
                                                           "stream": str(stream), "seconds": seconds, "warmup_s": 5.0}))
    return out


# -- the table ------------------------------------------------------------------------------------
def rows_of(res: dict, names: dict[str, str]) -> list[tuple[str, float, float, str]]:
    """(what, before, after, unit) per row."""
    rows = []
    for lib, label in names.items():
        b, a = res["identify"]["before"][lib], res["identify"]["after"][lib]
        for cond in (*CONDITIONS, "all"):
            bc = [r["cpu_ms"] for r in b if cond in ("all", r["cond"])]
            ac = [r["cpu_ms"] for r in a if cond in ("all", r["cond"])]
            what = "clean, room and voices" if cond == "all" else cond
            rows.append((f"identify CPU ms/clip, {label}, {what}: median", pct(bc, 50), pct(ac, 50), "ms"))
            rows.append((f"identify CPU ms/clip, {label}, {what}: 95th pct", pct(bc, 95), pct(ac, 95), "ms"))

    def both(part: str, value) -> tuple[float, float]:  # the median of each tree's values (NaN: not measured)
        return tuple(statistics.median(xs) if (xs := value(res[part][t])) else float("nan") for t in ("before", "after"))

    rows += [
        ("library add, x realtime (wall, 2 cores, CLI)", *both("add", lambda rs: [r["audio_s"] / r["wall_s"] for r in rs]), "x"),
        ("library add, CPU s per hour of audio", *both("add", lambda rs: [3600 * r["cpu_s"] / r["audio_s"] for r in rs]), "s"),
        ("start-up to first answer, `identify clip.wav` (wall s, median)",
         *both("startup", lambda rs: [r["wall_s"] for r in rs]), "s"),
        ("start-up to first answer, CPU s of the process (median)", *both("startup", lambda rs: [r["cpu_s"] for r in rs]), "s"),
        ("window listening: process CPU, % of one core", *both("gui", lambda rs: [r["cpu_pct"] for r in rs]), "%"),
        ("window listening: CPU ms per live answer (median)",
         *both("gui", lambda rs: [x for r in rs for x in r["answer_cpu_ms"]]), "ms"),
    ]
    return [r for r in rows if r[1] == r[1] or r[2] == r[2]]  # a partial run's table: only what it measured


def answers_rows(res: dict, names: dict[str, str]) -> list[str]:
    """Named correctly (accepted and right) per tree, and how many clips got the same answer from both."""
    out = ["| library, clips | before: named correctly | after: named correctly | same answer |", "|---|---|---|---|"]
    for lib, label in names.items():
        b = {r["clip"]: r for r in res["identify"]["before"][lib]}
        a = {r["clip"]: r for r in res["identify"]["after"][lib]}
        for cond in CONDITIONS:
            keys = [k for k in b if b[k]["cond"] == cond and k in a]
            if not keys:  # a partial run without identify
                continue
            right = lambda rs: 100 * np.mean([bool(rs[k]["song"]) and os.path.realpath(rs[k]["song"]) ==
                                               os.path.realpath(rs[k]["truth"]) for k in keys])
            same = 100 * np.mean([b[k]["song"] == a[k]["song"] for k in keys])
            out.append(f"| {label}, {cond} ({len(keys)}) | {right(b):.0f}% | {right(a):.0f}% | {same:.0f}% |")
    return out


def fmt(v: float) -> str:
    return "n/a" if v != v else f"{v:.0f}" if abs(v) >= 100 else f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"


def render(res: dict, names: dict[str, str]) -> str:
    m = res["meta"]
    lines = [f"_`python -m bench.realpath --before {m['before_rev']}{' --quick' if m['quick'] else ''}` on "
             f"{m['date']}: a **shared 2-core machine** ({m['cpu']}; other engineers' work ran beside it, load "
             f"average {m['load'][0]:.1f} at the start, {m['load'][1]:.1f} at the end). Before: {m['before']}; after: "
             f"{m['after']}; model sha256 {m['model_sha']}. CPU is process time on one torch thread after one warm-up "
             f"answer ({m['clips']}); the other rows as described in bench/README.md._", "",
             "| what | before | after | after / before |", "|---|---|---|---|"]
    for what, b, a, unit in rows_of(res, names):
        lines.append(f"| {what} | {fmt(b)} | {fmt(a)} | {a / b:.2f} |" if b == b and a == a and b else
                     f"| {what} | {fmt(b)} | {fmt(a)} | n/a |")
    return "\n".join(lines + ["", *answers_rows(res, names)]) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True, help="git revision to compare the working tree against")
    ap.add_argument("--quick", action="store_true", help="small libraries and few clips: a smoke test")
    ap.add_argument("--profile", default="", help="also cProfile the after-tree: clip types and/or 'gui' "
                    "(the window's GUI thread while listening), comma-separated")
    ap.add_argument("--only", default="identify,add,startup,gui",
                    help="comma-separated subset to measure ('none' with --profile: the profile alone)")
    args = ap.parse_args()
    size = QUICK if args.quick else FULL
    started, load0 = time.time(), os.getloadavg()[0]
    before, after = before_tree(args.before), after_tree()
    trees = (before, after)
    model = model_file(before, after)
    print(f"before: {before.label} at {before.root}\nafter:  {after.label} at {after.root}\nmodel:  {model}", flush=True)

    musics = {"small": whole_tracks(size["small"]), "large": parts(size["large"], before.root)}
    names = {"small": f"{size['small']} songs", "large": f"{size['large']} songs"}
    libs = {lib: {t.name: library(t, model, f"{lib}{len(m.files)}", m.folder) for t in trees} for lib, m in musics.items()}
    clip_dirs = {lib: clips(f"{lib}{len(m.files)}", m, size["positions"], before.root) for lib, m in musics.items()}
    warmup = {lib: d / "stream.wav" for lib, d in clip_dirs.items()}
    only = set(args.only.split(","))
    res: dict = {"identify": {t.name: {lib: [] for lib in libs} for t in trees},
                 "add": {t.name: [] for t in trees}, "startup": {t.name: [] for t in trees}, "gui": {t.name: [] for t in trees}}
    if "identify" in only:
        res["identify"] = measure_identify(trees, model, libs, clip_dirs, size, warmup)
    if "add" in only:
        res["add"] = measure_add(trees, model, add_music(size["add_min"], exclude=100), size["add_rounds"])
    if "startup" in only:
        res["startup"] = measure_startup(trees, model, libs["small"], clip_dirs["small"] / "mic3" / "000.wav",
                                         size["startup_runs"])
    if "gui" in only:
        res["gui"] = measure_gui(trees, model, libs["small"], clip_dirs["small"] / "stream.wav", size["gui_s"],
                                 size["gui_rounds"])
    res["meta"] = {"before_rev": args.before, "quick": args.quick, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                   "cpu": _cpu(), "load": (load0, os.getloadavg()[0]),
                   "before": before.label, "after": after.label, "minutes": round((time.time() - started) / 60, 1),
                   "model_sha": hashlib.sha256(model.read_bytes()).hexdigest()[:12],
                   "clips": f"{size['positions']} positions x {len(CONDITIONS)} conditions per library; libraries of "
                            f"{len(musics['small'].files)} whole tracks ({musics['small'].seconds / 3600:.1f} h) and "
                            f"{len(musics['large'].files)} parts ({musics['large'].seconds / 3600:.1f} h)"}
    table = render(res, names)
    print("\n" + table)
    out = BENCH / "out"
    out.mkdir(exist_ok=True)
    full = only >= {"identify", "add", "startup", "gui"}
    stem = "realpath-quick" if args.quick else "realpath" if full else "realpath-partial"
    (out / f"{stem}.md").write_text(table)
    (out / f"{stem}.json").write_text(json.dumps(res, indent=1))
    for what in filter(None, args.profile.split(",")):
        if what == "gui":
            res_gui = run_worker(after, model, {"kind": "gui", "library": str(libs["small"]["after"]), "profile": True,
                                                "stream": str(clip_dirs["small"] / "stream.wav"),
                                                "seconds": size["gui_s"], "warmup_s": 5.0})
            (out / "realpath-profile-gui.txt").write_text(res_gui["text"])
            print(f"cProfile of the after-tree's GUI thread while listening ({res_gui['cpu_pct']:.0f}% of one core, "
                  f"{res_gui['answers']} answers):\n{res_gui['text']}")
        else:
            print(profile(after, model, libs["small"]["after"], clip_dirs["small"], what, warmup["small"]))
    print(f"done in {(time.time() - started) / 60:.1f} min; written to {out / stem}.md/.json")


def profile(tree: Tree, model: Path, lib: Path, clip_dir: Path, cond: str, warmup: Path) -> str:
    files = sorted(str(f) for f in (clip_dir / cond).glob("*.wav"))
    res = run_worker(tree, model, {"kind": "profile", "library": str(lib), "clips": files, "warmup": str(warmup)})
    text = res["text"]
    (BENCH / "out" / f"realpath-profile-{cond}.txt").write_text(text)
    return f"cProfile of the after-tree, {res['clips']} {cond} clips ({lib.name}):\n{text}"


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


if __name__ == "__main__":
    main()
