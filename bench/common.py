"""Shared helpers of the benchmarks: the machine, timers, memory, a random-weight model, tables.

Every benchmark writes `bench/out/<name>.json` (its numbers, the machine and the load average
before and after) and prints its tables; `bench/report.py` turns the JSON files into
`bench/RESULTS.md`. Absolute timings depend on the machine and on what else runs on it, so each
benchmark also measures a baseline in the same run and the results quote ratios against it.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

BENCH = Path(__file__).resolve().parent
# ignored by git (.gitignore: /bench/out/); `bench.all --quick` points it elsewhere so that smoke
# tests never overwrite the numbers RESULTS.md is made from
OUT = Path(os.environ.get("SHAZAMLET_BENCH_OUT", BENCH / "out"))


# -- the machine ----------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def mem_total_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("nan")


def machine() -> dict:
    import annoy  # noqa: F401  (version below)
    from importlib.metadata import version

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mem_gb": round(mem_total_gb(), 1),
        "gpu": gpu,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "annoy": version("annoy"),
        "platform": platform.platform(),
    }


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# -- timing -----------------------------------------------------------------------------------------
def timed(fn: Callable[[], object], repeat: int = 5, warmup: int = 1, min_s: float = 0.0) -> dict:
    """Median/min/mean wall seconds of `fn()` over `repeat` runs (after `warmup` runs); at least
    `repeat` runs, more until `min_s` seconds were spent.

    Also `cpu`: the median CPU seconds of this process per run (all its threads). On a machine
    that other work keeps busy, wall time mostly measures the scheduler; the CPU time of a
    single-threaded run is what the same work takes on an idle core.
    """
    for _ in range(warmup):
        fn()
    times, cpu = [], []
    started = time.perf_counter()
    while len(times) < repeat or time.perf_counter() - started < min_s:
        c = time.process_time()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return {"median": statistics.median(times), "min": min(times), "mean": statistics.fmean(times),
            "n": len(times), "cpu": statistics.median(cpu)}


class Stopwatch:
    """Accumulates wall and CPU time per named stage: `with sw("decode"): ...`."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def __call__(self, name: str) -> "_Lap":
        return _Lap(self, name)


class _Lap:
    def __init__(self, sw: Stopwatch, name: str) -> None:
        self.sw, self.name = sw, name

    def __enter__(self) -> None:
        self.t = time.perf_counter()
        self.c = time.process_time()

    def __exit__(self, *exc) -> None:
        self.sw.totals[self.name] = self.sw.totals.get(self.name, 0.0) + time.perf_counter() - self.t
        self.sw.cpu[self.name] = self.sw.cpu.get(self.name, 0.0) + time.process_time() - self.c


# -- memory ------------------------------------------------------------------------------------------
def proc_status_mb(field: str) -> float:
    """`VmRSS`, `VmHWM` (peak RSS), ... of this process in MiB, from /proc/self/status."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    if field == "VmHWM":
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return float("nan")


def rss_mb() -> float:
    return proc_status_mb("VmRSS")


def peak_rss_mb() -> float:
    return proc_status_mb("VmHWM")


def dir_size_mb(folder: Path, pattern: str = "*") -> float:
    return sum(p.stat().st_size for p in Path(folder).rglob(pattern) if p.is_file()) / 2**20


# -- a model of the product's architecture -------------------------------------------------------------
def random_model_path(fingerprint_dim: int = 128) -> Path:
    """A random-weight model of the product's architecture (Encoder(1024, 128)).

    For speed and memory a random-weight model is equivalent to the trained one: same layers,
    same shapes, same FLOPs. (Recall against the real audio needs the trained model.)
    """
    from shazamlet.model import Encoder, ModelMeta, save_model

    path = OUT / f"bench-random-{fingerprint_dim}.pt"
    if not path.exists():
        torch.manual_seed(0)
        OUT.mkdir(parents=True, exist_ok=True)
        save_model(path, Encoder(1024, fingerprint_dim),
                   ModelMeta(name="bench-random", objective="none", fingerprint_dim=fingerprint_dim))
    return path


def embedder(batch_size: int = 128, fingerprint_dim: int = 128):
    from shazamlet.model import TileEmbedder

    return TileEmbedder(str(random_model_path(fingerprint_dim)), batch_size=batch_size)


# -- results -----------------------------------------------------------------------------------------------
def md_table(headers: list[str], rows: list[list]) -> str:
    def cell(v) -> str:
        if isinstance(v, float):
            if v != v:
                return "-"
            a = abs(v)
            return f"{v:.3g}" if a < 10 else f"{v:,.0f}" if a >= 1000 else f"{v:.1f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


class Results:
    """Numbers and tables of one benchmark; `save()` writes bench/out/<name>.json."""

    def __init__(self, name: str, title: str) -> None:
        self.name, self.title = name, title
        self.started = time.time()
        self.data: dict = {"name": name, "title": title, "machine": machine(), "load_before": loadavg(),
                           "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "tables": [],
                           "notes": [], "values": {}}

    def table(self, caption: str, headers: list[str], rows: list[list]) -> None:
        self.data["tables"].append({"caption": caption, "headers": headers, "rows": rows})
        print(f"\n{caption}\n{md_table(headers, rows)}", flush=True)

    def note(self, text: str) -> None:
        self.data["notes"].append(text)
        print(f"note: {text}", flush=True)

    def value(self, key: str, v) -> None:
        self.data["values"][key] = v

    def save(self) -> Path:
        self.data["load_after"] = loadavg()
        self.data["elapsed_s"] = round(time.time() - self.started, 1)
        self.data["peak_rss_mb"] = round(peak_rss_mb(), 1)
        OUT.mkdir(parents=True, exist_ok=True)
        path = OUT / f"{self.name}.json"
        path.write_text(json.dumps(self.data, indent=1, default=_plain))
        print(f"\nwrote {path} (load before {self.data['load_before']}, after {self.data['load_after']})")
        return path


def _plain(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o))
