"""Goal 1 - indexing throughput: seconds of audio indexed per second of wall time, by stage.

    python -m bench.throughput [--quick] [--no-compile]

Three parts, all in one run so that their ratios share the machine's load:

A. Encoder variants, in tiles/s, measured round-robin (one batch of each variant per round, the
   median over rounds) against the baseline: the bare ResNet18 trunk forward on 64x64 tiles. Batch
   size, threads, channels_last, bf16 autocast, int8 dynamic quantisation of the Linear layers,
   torch.compile.
B. The product's stages on real files: decode (`load_audio`), front end (`LogMelFrontEnd.tiles`),
   encoder (`TileEmbedder.embed`), index build (`build_index`), then `Library.add` end to end (its
   decoder threads overlap decoding with the encoder).
C. What the library hop (0.51 / 0.75 / 1.0 s) and a faster encoder would give, computed from the
   per-stage costs measured in B and the encoder rates measured in A.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from bench.common import Results, Stopwatch, random_model_path

NOMINAL_BARE_RATE = 440.0  # tiles/s of the bare ResNet18 on these 2 cores when nothing else runs
GOAL_RT = 300.0


# -- A: encoder variants ----------------------------------------------------------------------------
def encoder_variants(model_path: Path, do_compile: bool) -> dict[str, tuple[callable, int, dict]]:
    """name -> (forward(batch) callable, batch size, settings)."""
    from shazamlet.model import load_model

    enc = load_model(model_path).encoder.eval()
    v: dict[str, tuple] = {}
    v["bare ResNet18 trunk (baseline)"] = (lambda x: enc.trunk(x.unsqueeze(1)), 128, {})
    v["product encoder: fingerprint, batch 128"] = (enc.fingerprint, 128, {})
    for b in (32, 64, 256):
        v[f"product encoder, batch {b}"] = (enc.fingerprint, b, {})
    v["product encoder, 1 thread"] = (enc.fingerprint, 128, {"threads": 1})
    cl = copy.deepcopy(enc).to(memory_format=torch.channels_last)

    def cl_forward(x):
        return cl.fingerprint(x.unsqueeze(1).contiguous(memory_format=torch.channels_last))

    v["product encoder, channels_last"] = (cl_forward, 128, {})
    with warnings.catch_warnings():  # deprecated in favour of torchao, still works in torch 2.x
        warnings.simplefilter("ignore")
        q = torch.ao.quantization.quantize_dynamic(copy.deepcopy(enc), {torch.nn.Linear}, dtype=torch.qint8)
    v["product encoder, int8 dynamic Linear"] = (q.fingerprint, 128, {})

    def bf16(x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return enc.fingerprint(x).float()

    v["product encoder, bf16 autocast"] = (bf16, 128, {})
    fp16 = copy.deepcopy(enc).half()
    v["product encoder, fp16 weights"] = (lambda x: fp16.fingerprint(x.half()).float(), 128, {})
    if do_compile:
        comp = torch.compile(copy.deepcopy(enc).fingerprint)
        v["product encoder, torch.compile"] = (comp, 128, {"compile": True})
    return v


@torch.inference_mode()
def measure_encoders(variants: dict, rounds: int, tiles_per_round: int) -> dict[str, dict]:
    default_threads = torch.get_num_threads()
    x_all = torch.rand(max(256, tiles_per_round), 64, 64)
    compile_s = {}
    for name, (fn, b, opt) in variants.items():  # warm up (and compile) once each
        t = time.perf_counter()
        fn(x_all[:b])
        compile_s[name] = time.perf_counter() - t
    rates: dict[str, list[float]] = {n: [] for n in variants}
    for _ in range(rounds):
        for name, (fn, b, opt) in variants.items():
            torch.set_num_threads(opt.get("threads", default_threads))
            n = max(b, (tiles_per_round // b) * b)
            t = time.perf_counter()
            for i in range(0, n, b):
                fn(x_all[i % len(x_all): i % len(x_all) + b] if i + b <= len(x_all) else x_all[:b])
            rates[name].append(n / (time.perf_counter() - t))
            torch.set_num_threads(default_threads)
    return {n: {"tiles_per_s": statistics.median(r), "all": r, "first_call_s": compile_s[n]} for n, r in rates.items()}


# -- B: stages on files -------------------------------------------------------------------------------
def make_songs(folder: Path, n: int, seconds: float) -> list[Path]:
    import soundfile as sf

    from tests.synth import STYLES, make_song

    paths = []
    for i in range(n):
        p = folder / STYLES[i % len(STYLES)].name / f"song_{i:02d}.wav"
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(p, make_song(100 + i, STYLES[i % len(STYLES)], seconds), 22_050)
        paths.append(p)
    return paths


def corpus_files(n: int, max_mb: float = 6.0) -> list[Path]:
    root = Path("/work/data/corpus")
    if not root.exists():
        return []
    files = sorted(p for p in root.rglob("*.ogg") if p.stat().st_size < max_mb * 2**20)
    step = max(1, len(files) // n)
    return files[::step][:n]


def measure_stages(paths: list[Path], embedder, hops: tuple[int, ...], index_items: int) -> dict:
    """Per-stage seconds over `paths` (sequential, one file at a time)."""
    from shazamlet.audio.decode import load_audio
    from shazamlet.features import LogMelFrontEnd

    cfg = embedder.features
    fe = LogMelFrontEnd(cfg)
    sw = Stopwatch()
    audio_s = 0.0
    n_tiles = {h: 0 for h in hops}
    fps_all = []
    for p in paths:
        with sw("decode"):
            wave = load_audio(p, cfg.sample_rate)
        audio_s += len(wave) / cfg.sample_rate
        for h in hops:
            with sw(f"front end, hop {h}"):
                tiles = fe.tiles(wave, h)
            n_tiles[h] += len(tiles)
            if h == hops[0]:
                with sw("encoder"):
                    fps_all.append(embedder.embed(tiles.tiles))
    out = {"audio_s": audio_s, "files": len(paths), "stage_s": dict(sw.totals), "tiles": n_tiles}
    if index_items:
        from shazamlet.library.index import build_index

        fps = np.concatenate(fps_all)
        reps = int(np.ceil(index_items / len(fps)))
        chunks = [(i, fps, np.arange(len(fps), dtype=np.int32)) for i in range(reps)]
        with tempfile.TemporaryDirectory(dir=Path(__file__).parent / "out") as d:
            t = time.perf_counter()
            rec = build_index(Path(d), 1, fps.shape[1], chunks, 16)
            out["index_s"] = time.perf_counter() - t
            out["index_items"] = rec.n_items
    return out


def measure_library_add(paths: list[Path], model_path: Path) -> dict:
    from shazamlet.library import Library
    from shazamlet.model import TileEmbedder

    emb = TileEmbedder(str(model_path))
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent / "out") as d:
        lib = Library.open(Path(d) / "lib", emb)
        t = time.perf_counter()
        report = lib.add([str(p) for p in paths])
        wall = time.perf_counter() - t
        n_items = lib.index_record().n_items
        lib.close()
    return {"wall_s": wall, "audio_s": report.audio_seconds, "tiles": n_items, "errors": report.errors}


@torch.inference_mode()
def probe_rate(fn, n: int = 128) -> float:
    """tiles/s of the baseline on one batch (a probe of the machine's current load)."""
    x = torch.rand(n, 64, 64)
    t = time.perf_counter()
    fn(x)
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds and songs (a smoke test)")
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile (slow to compile)")
    args = ap.parse_args()
    res = Results("throughput", "1. Indexing throughput")
    model_path = random_model_path()
    res.note("Random-weight model of the product's architecture (Encoder(1024, 128)): same layers and FLOPs "
             "as the trained model, so the same speed.")
    from shazamlet.model import TileEmbedder

    # A
    rounds, per_round = (2, 128) if args.quick else (5, 256)
    variants = encoder_variants(model_path, do_compile=not args.no_compile)
    rates = measure_encoders(variants, rounds, per_round)
    base = rates["bare ResNet18 trunk (baseline)"]["tiles_per_s"]
    res.value("encoder_rates", rates)
    rows = [[n, r["tiles_per_s"], r["tiles_per_s"] / base, r["tiles_per_s"] * 11 * 1024 / 22050,
             r["tiles_per_s"] / base * NOMINAL_BARE_RATE * 11 * 1024 / 22050, r["first_call_s"]]
            for n, r in rates.items()]
    res.table(f"Encoder variants ({rounds} interleaved rounds of {per_round} tiles, median; "
              f"{torch.get_num_threads()} threads unless said)",
              ["variant", "tiles/s (loaded)", "x baseline", "x realtime at 0.51 s hop (loaded)",
               "x realtime at 0.51 s hop, projected to unloaded (baseline = 440 tiles/s)", "first call s"], rows)

    # B: each repeat is bracketed by probes of the baseline, so a stage's speed can be put on the
    # same scale as part A even when the load changes between them.
    tmp = Path(__file__).parent / "out" / "throughput-songs"
    n_songs, seconds = (2, 30.0) if args.quick else (4, 45.0)
    songs = sorted(tmp.rglob("*.wav")) if tmp.exists() else []
    if len(songs) != n_songs or abs(__import__("soundfile").info(str(songs[0])).duration - seconds) > 1:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        songs = make_songs(tmp, n_songs, seconds)
    emb = TileEmbedder(str(model_path))
    emb.embed(torch.rand(128, 64, 64))  # warm up oneDNN for the batch shape
    probe = variants["bare ResNet18 trunk (baseline)"][0]
    hops = (11, 16, 22)
    runs = []
    for r in range(2 if args.quick else 4):  # run 0 warms up (oneDNN builds kernels per batch shape)
        p0 = probe_rate(probe)
        st = measure_stages(songs, emb, hops, index_items=(50_000 if not args.quick else 5_000) if r == 0 else 0)
        p1 = probe_rate(probe)
        add = measure_library_add(songs, model_path)
        p2 = probe_rate(probe)
        runs.append({"stages": st, "library_add": add, "probe_rates": [p0, p1, p2]})
    res.value("stage_runs", runs)
    index_s, index_items = runs[0]["stages"]["index_s"], runs[0]["stages"]["index_items"]
    runs = runs[1:]
    st = runs[0]["stages"]
    a = st["audio_s"]
    med = lambda xs: float(statistics.median(xs))  # noqa: E731
    stage_s = {k: med([r["stages"]["stage_s"][k] for r in runs]) for k in st["stage_s"]}
    stage_probe = med([(r["probe_rates"][0] + r["probe_rates"][1]) / 2 for r in runs])
    add_wall = med([r["library_add"]["wall_s"] for r in runs])
    add_probe = med([(r["probe_rates"][1] + r["probe_rates"][2]) / 2 for r in runs])
    ogg = corpus_files(2 if args.quick else 5)
    st_ogg = None
    if ogg:  # decoding a compressed, 44.1 kHz file costs more than our 22.05 kHz wav
        from shazamlet.audio.decode import load_audio

        t = time.perf_counter()
        sec = sum(len(load_audio(p, 22_050)) for p in ogg) / 22_050
        st_ogg = {"files": len(ogg), "audio_s": sec, "decode_s": time.perf_counter() - t}
    res.value("stages_ogg", st_ogg)
    per_tile_index = index_s / index_items
    tiles11 = st["tiles"][11]
    cost = {  # seconds of wall time per second of audio
        "decode (wav, 22.05 kHz)": stage_s["decode"] / a,
        "front end (hop 0.51 s)": stage_s["front end, hop 11"] / a,
        "encoder (TileEmbedder.embed, batch 128)": stage_s["encoder"] / a,
        "index build (ANNOY add + 16 trees + sha256)": per_tile_index * tiles11 / a,
    }
    if st_ogg:
        cost["decode (ogg vorbis, 44.1 kHz -> 22.05 kHz)"] = st_ogg["decode_s"] / st_ogg["audio_s"]
    total = sum(v for k, v in cost.items() if "ogg" not in k)
    sc = NOMINAL_BARE_RATE / stage_probe
    rows = [[k, v * 1000, 1 / v, sc / v, v / total if "ogg" not in k else float("nan")] for k, v in cost.items()]
    rows.append(["sum of stages (sequential, wav)", total * 1000, 1 / total, sc / total, 1.0])
    rows.append(["Library.add end to end (decode threads overlap the encoder)", add_wall / a * 1000, a / add_wall,
                 NOMINAL_BARE_RATE / add_probe * a / add_wall, float("nan")])
    res.table(f"Stages on {st['files']} synthesized songs ({a:.0f} s of audio, {tiles11} tiles at 0.51 s hop), "
              f"median of {len(runs)} runs; index build per tile measured on {index_items:,} items; baseline probe "
              f"{stage_probe:.0f} tiles/s during the stages, {add_probe:.0f} during Library.add",
              ["stage", "ms per s of audio (loaded)", "x realtime (loaded)",
               "x realtime, unloaded (x 440 / probe)", "share of the sequential sum"], rows)
    res.value("cost_per_audio_s", cost)
    res.value("library_add_rt_unloaded", NOMINAL_BARE_RATE / add_probe * a / add_wall)

    # C: projections, all in units of the unloaded machine (baseline = 440 tiles/s)
    rows = []
    dec_fe = {h: (stage_s["decode"] + stage_s[f"front end, hop {h}"]) / a / (NOMINAL_BARE_RATE / stage_probe)
              for h in hops}
    idx_unl = per_tile_index / (NOMINAL_BARE_RATE / stage_probe)
    for h in hops:
        hop_s = h * 1024 / 22050
        tiles_per_s_audio = st["tiles"][h] / a
        for name in ("product encoder: fingerprint, batch 128", "product encoder, batch 256",
                     "product encoder, channels_last", "product encoder, int8 dynamic Linear",
                     "product encoder, bf16 autocast", "product encoder, torch.compile"):
            if name not in rates:
                continue
            enc_rate = rates[name]["tiles_per_s"] / base * NOMINAL_BARE_RATE
            enc_cost = tiles_per_s_audio / enc_rate
            idx = idx_unl * tiles_per_s_audio
            seq = dec_fe[h] + enc_cost + idx
            overlapped = max(enc_cost + idx, dec_fe[h])  # decode + front end hidden behind the encoder
            rows.append([f"{hop_s:.2f} s ({h} frames)", name.replace("product encoder", "encoder"), enc_rate,
                         1 / seq, 1 / overlapped])
    res.table("Projected indexing speed on the unloaded 2 cores (x realtime), by library hop and encoder variant: "
              "encoder rates from part A scaled by 440 / baseline; 'overlapped' = decode and front end hidden "
              "behind the encoder (what Library.add's decoder threads aim at, with a core to spare)",
              ["library hop", "encoder", "tiles/s (unloaded)", "sequential", "overlapped"], rows)
    res.value("bare_rate", base)
    res.value("unload_scale", NOMINAL_BARE_RATE / base)
    res.save()


if __name__ == "__main__":
    main()
