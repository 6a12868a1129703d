"""Write bench/out/micro.md from the JSON the stage micro-benchmarks left in bench/out/.

    python -m bench.report

The micro-benchmarks say what one stage costs in isolation; their report stays beside their JSON, and
bench/RESULTS.md (the real path's table, `bench.realpath`) says what they mean for the product. A
benchmark whose JSON is not in bench/out/ (not re-run here: bench/out/ is not versioned) keeps its
section and machine row from the previous micro.md, marked as such.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from bench.common import BENCH, OUT, md_table

ORDER = ["throughput", "hop_offset", "hop_offset_model", "hop_accuracy", "query", "table1", "scale", "scale_trees", "ivf",
         "ivf_192d", "ivf_256d", "memory", "between", "landmarks", "presence", "style"]

HOW_TO_RUN = """\
## How to run

```
. .venv/bin/activate
nice -n 10 python -m bench.all            # every benchmark, each in its own process, then this file
                                          # (~50 min on 2 busy cores; builds 10 000 and 50 000 songs:
                                          # 10 GB in bench/out)
nice -n 10 python -m bench.query          # or throughput, hop_offset, table1, scale, memory, ivf
python -m bench.report                    # rewrite this file from bench/out/*.json
python -m bench.all --quick               # smoke test with small sizes (writes bench/out/quick/ only)
```

Scripts: `bench/throughput.py` (goal 1), `bench/hop_offset.py` and `bench/hop_accuracy.py` (what a
coarser hop costs; the second needs a trained model), `bench/query.py` (2), `bench/table1.py` (3), `bench/scale.py`
(4), `bench/memory.py` (5), `bench/ivf.py` (the next index for large libraries), `bench/synthlib.py`
(synthetic libraries at the embeddings level), `bench/common.py` (machine, timers, RSS, tables).
Raw numbers: `bench/out/<name>.json` (not versioned). With a GPU, `TileEmbedder` picks it up, so
the `Library.add` and query rows then describe the GPU; the encoder variants of part A always run on
the CPU. No GPU was lent to the session that produced these numbers.

**How to read the numbers.** Timings are not asserted anywhere. Every benchmark measures its
baseline in the same run and the findings quote ratios. These runs shared 2 cores with a training
run and other engineers' tests (load averages below, 4 to 9 on 2 cores), so wall times here are
2 to 30 times worse than on an idle machine. That is why speeds are given as **CPU time of one
thread**: the time the work takes on an idle core, and much less sensitive to the load. Projections
to "2 idle cores" are anchored to the issue's figure for the baseline: a bare ResNet18 embeds
440 tiles/s on these 2 cores when nothing else runs.

**Models and data.** Speed and memory use a random-weight model of the product's architecture
(`Encoder(1024, 64)`, 64-d fingerprints like the shipped model; `Encoder(1024, 128)` in the
throughput runs of 2026-11-25), saved with `save_model` as "bench-random". It has the same layers, shapes
and FLOPs as the trained model, so the same speed and memory. Audio is synthesized (`tests/synth.py`)
plus a few files of the free corpus in /work/data/corpus (decode speed only). Libraries of 1 000
songs and more are synthetic **at the embeddings level** (`bench/synthlib.py`): each song is an
AR(1) walk of unit vectors around a per-song centre, so consecutive tiles are close, as real
overlapping tiles are. They are written through the product's own `EmbeddingStore.write`,
`Catalog.upsert_song` and `Library.rebuild_index`. Recall is measured on these vectors, not on
music.
"""


def load() -> dict[str, dict]:
    out = {}
    for name in ORDER:
        p = OUT / f"{name}.json"
        if p.exists():
            out[name] = json.loads(p.read_text())
    return out


def titles() -> dict[str, str]:
    """Benchmark name -> its section title, as each script passes them to `Results`."""
    found = {}
    for script in BENCH.glob("*.py"):
        found.update(re.findall(r'Results\(\s*"(\w+)",\s*"([^"]+)"', script.read_text()))
    return found


def previous(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Sections (by title) and machine-table rows (by benchmark name) of an existing micro.md."""
    if not path.exists():
        return {}, {}
    sections, rows, title = {}, {}, None
    for line in path.read_text().splitlines():
        if line.startswith("## "):
            title = line[3:].strip()
            sections[title] = line
            continue
        if title is not None:
            sections[title] += "\n" + line
        if title == "Machine" and line.startswith("| ") and not line.startswith("| benchmark"):
            rows[line.split("|")[1].strip()] = line
    return {t: text.strip() for t, text in sections.items()}, rows


def machine_section(runs: dict[str, dict], kept_rows: list[str], kept_machine: list[str] = ()) -> str:
    any_run = next(iter(runs.values()))
    m = any_run["machine"]
    lines = ["## Machine", "",
             f"- CPU: {m['cpu']}, {m['cores']} cores (KVM guest), torch CPU capability {m['cpu_capability']}, "
             f"{m['mem_gb']} GiB RAM, GPU: {m['gpu'] or 'none'}",
             f"- Python {m['python']}, torch {m['torch']}, numpy {m['numpy']}, annoy {m['annoy']}; {m['platform']}",
             "- Shared: a model training run used both cores throughout, and other engineers ran tests.", "",
             md_table(["benchmark", "started (UTC)", "load avg before (1/5/15 min)", "load avg after", "run s",
                       "peak RSS of the run MiB"],
                      [[n, r["started_utc"], " / ".join(f"{x:.1f}" for x in r["load_before"]),
                        " / ".join(f"{x:.1f}" for x in r["load_after"]), r["elapsed_s"], r["peak_rss_mb"]]
                       for n, r in runs.items()])]
    if kept_rows:
        lines += kept_rows + ["", "(The last rows are from earlier runs whose sections are kept below.)"]
        here = {lines[2], lines[3]}
        if any(line not in here for line in kept_machine):  # another session's host: say which
            lines += ["", "The earlier runs' machine:", ""] + list(kept_machine)
    return "\n".join(lines)


def section(run: dict) -> str:
    parts = [f"## {run['title']}", ""]
    for n in run["notes"]:
        parts += [f"_{n}_", ""]
    for t in run["tables"]:
        parts += [f"**{t['caption']}**", "", md_table(t["headers"], t["rows"]), ""]
    return "\n".join(parts)


def write_results(path: Path | None = None) -> Path:
    path = path or OUT / "micro.md"
    runs = load()
    old_sections, old_rows = previous(path)
    title_of = titles()
    kept = {n: old_sections[title_of[n]] for n in ORDER
            if n not in runs and n in title_of and title_of[n] in old_sections}
    text = ["# Shazamlet benchmarks", "",
            f"_Generated by `python -m bench.report` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} "
            f"from bench/out/*.json; what they mean for the product: bench/RESULTS.md._", ""]
    text += [HOW_TO_RUN, ""]
    if runs:
        old_machine = [line for line in old_sections.get("Machine", "").splitlines()
                       if line.startswith(("- CPU:", "- Python"))][-2:]  # the kept runs' own, if noted
        text += [machine_section(runs, [old_rows[n] for n in kept if n in old_rows], old_machine), ""]
    for name in ORDER:
        if name in runs:
            text += [section(runs[name]), ""]
        elif name in kept:
            head, _, body = kept[name].partition("\n")
            note = f"_Kept from the previous micro.md (bench/out/{name}.json was not there when this file was written)._"
            if note not in body:
                body = f"\n{note}\n{body}"
            text += [head + "\n" + body.rstrip(), ""]
    path.write_text("\n".join(text).rstrip() + "\n")
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    write_results()
