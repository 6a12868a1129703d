"""`python -m trainer evaluate RUN`: the product's own recognition path, measured.

Builds a library (`shazamlet.library.Library`) from test songs minus a held-out set of unknown songs,
queries excerpts at random offsets (never aligned with library tiles) through
`shazamlet.recognition.Recognizer.identify_wave`, under six waveform conditions (`trainer.degrade_wave`):
clean3, mic3 and mic10 (a laptop microphone in a room), babble3 and babble10 (the room and four people
talking at the music's level), speed3 (played 0.92-1.08x as fast, then the room). Reports song top-1/top-2, unknown rejection and genre accuracy,
calibrates one acceptance threshold on the raw scores, and draws a confusion matrix and a t-SNE map.
Writes `RUN/eval<variant>/eval.json` (+ PNGs), or `RUN/eval-<model file>` for `--model`; `export` takes the
threshold from it, and `report` (`trainer.card`) turns a model file's two draws into its model card.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from shazamlet.audio.decode import load_audio
from shazamlet.config import FeatureConfig, IndexConfig
from shazamlet.landmarks import SongLandmarks, pair, peaks, song_wide_evidence
from shazamlet.model import ModelMeta, TileEmbedder, load_model, save_model
from trainer.degrade_wave import Babble, at_speed, mic_chain, synthetic_rooms
from trainer.loop import Run
from trainer.objectives import build_modules, is_contrastive
from trainer.songs import Song
from trainer.variant import Variant

CONDITIONS = (("clean3", 3.0), ("mic3", 3.0), ("babble3", 3.0), ("mic10", 10.0), ("speed3", 3.0), ("babble10", 10.0))
SPEEDS = (0.92, 0.95, 0.97, 1.03, 1.05, 1.08)  # speed3: each query played at one of these, then the room
PRE_S = 1.0  # audio before a query fed to the room (reverb tail)
SHARED_AUDIO_EXCESS = 20.0  # a stretch this far above chance in a library song is that song's audio (`in_library_audio`)


@dataclass
class EvalConfig:
    library_songs: int = 60
    unknown_songs: int = 20
    queries: int = 120  # known-song queries per condition; unknown-song queries: half as many
    seed: int = 0
    data: str | None = None
    tsne_tiles_per_song: int = 12
    variant: Variant = field(default_factory=Variant)  # what is done to the run's encoder before it is measured
    library_hop_frames: int = IndexConfig.library_hop_frames  # the library's tile hop (the app's default)
    between_tiles: bool = IndexConfig.between_tiles  # the library keeps in-between tiles (the app's default)
    landmarks: bool = IndexConfig.landmarks  # ... and spectral peaks for the landmark check (the app's default)


def encoder_from_run(run: Run, variant: Variant = Variant()) -> tuple[torch.nn.Module, ModelMeta]:
    """The run's current encoder and its model-file description (threshold not yet calibrated), with the
    tile fingerprint `tune-tiles` trained appended when `variant` names one."""
    ck = torch.load(run.checkpoint_path, map_location="cpu", weights_only=True)
    mods = build_modules(run.config.objective, len(run.genres), fingerprint_dim=run.config.fingerprint_dim,
                         centre_bands=run.config.centre_bands)
    mods.load_state_dict(ck["modules"])
    encoder = mods["encoder"].eval()  # inference statistics: BatchNorm in training mode uses the batch's
    if "classifier" in mods and run.genres:  # shipped with the encoder: the genre of songs that are not in the library
        encoder.genre_head = mods["classifier"].eval()
    meta = run_meta(run, ck, 0.5)
    if variant.tile_dim:
        from trainer.tune_tiles import attach_tuned

        tuned = meta.extra["tile_projection"] = attach_tuned(encoder, run, variant.tile_dim, variant.tile_weight,
                                                             variant.tile_residual)
        how = f" with a {variant.tile_residual}-channel residual" if variant.tile_residual else ""
        since = f", from {tuned['start']}" if tuned.get("start") else ""
        meta.trained_on += (f"; tile projection trained{how} {tuned['tuned_minutes']:.0f} min "
                            f"({tuned['tuned_steps']} steps){since}")
    return encoder, meta


def eval_folder(run: Run, model: str | None = None, variant: Variant = Variant()) -> Path:
    """Where `evaluate` writes: RUN/eval<variant suffix> (e.g. eval-tile128w0.85-tuned-r8), or
    RUN/eval-<file> for --model."""
    if model:
        return Path(run.folder) / f"eval-{Path(model).stem}"
    return Path(run.folder) / ("eval" + variant.suffix)


def model_from_run(run: Run, path: Path, variant: Variant = Variant()) -> Path:
    """Write the run's current encoder as a model file (fp32) for the app's loader."""
    encoder, meta = encoder_from_run(run, variant)
    save_model(path, encoder, meta)
    return path


def run_meta(run: Run, ck: dict, threshold: float) -> ModelMeta:
    from trainer.cache import SpectrogramCache

    cfg = run.config
    feats = SpectrogramCache(run.info["cache"]).features
    n_train = len(run.info["split"]["train"])
    init = run.info.get("init_from")
    before = ""
    if init and init.get("trained_on"):  # started from a model file, which says how it was made
        before = f", fine-tuned from {init['run']} ({init['trained_on']})"
    elif init:
        before = f", fine-tuned from {Path(init['run']).name} ({init['step']} steps, {init['minutes']:.0f} min)"
    trained_on = (f"{n_train} songs of {Path(cfg.data).name} ({', '.join(run.genres)}), "
                  f"{ck['step']} steps x batch {cfg.batch}, {ck['elapsed'] / 60:.0f} min{before}")
    if init and init.get("trained_on") and ck["step"] == 0:  # a model file's encoder, not trained any further here
        trained_on = init["trained_on"]
    return ModelMeta(
        name=Path(run.folder).name, objective=cfg.objective, embedding_dim=1024,
        fingerprint_dim=cfg.fingerprint_dim if is_contrastive(cfg.objective) else None, features=feats.to_dict(),
        genres=list(run.genres), threshold=float(threshold),
        trained_on=trained_on,
        extra={"run": Path(run.folder).name, "step": int(ck["step"]), "seed": cfg.seed},
    )


def labelled_test_songs(run: Run) -> list[Song]:
    """The run's labelled test songs; ValueError when there are too few to evaluate (told before training,
    where a recipe evaluates what it trains)."""
    test = [s for s in run.songs("test") if s.labelled]
    if len(test) < 2:
        raise ValueError(f"{run.folder}: the evaluation needs at least 2 labelled test songs (the split has "
                         f"{len(test)}): add music to the genre folders, then remove {run.folder} (its split is "
                         "made once)")
    return test


def pick_sets(run: Run, cfg: EvalConfig) -> tuple[list[Song], list[Song]]:
    """(library songs, unknown songs) from the run's test split; labelled songs only.

    Unknown songs come from packages held out whole when there are enough of them, spread over the
    genres round-robin, so their style is judged on collections the model never heard.
    """
    rng = np.random.default_rng(cfg.seed)
    test = labelled_test_songs(run)
    n_unknown = min(cfg.unknown_songs, len(test) // 2)  # a small collection keeps half its test songs as the library
    held = set(run.info["split"].get("held_out_packages", []))
    pool = [s for s in test if s.package in held] or test
    by_genre: dict[str, list[Song]] = {}
    for i in rng.permutation(len(pool)):
        by_genre.setdefault(pool[i].genre, []).append(pool[i])
    unknown: list[Song] = []
    while len(unknown) < n_unknown and any(by_genre.values()):
        for g in sorted(by_genre):
            if by_genre[g] and len(unknown) < n_unknown:
                unknown.append(by_genre[g].pop())
    rest = [s for s in test if s not in unknown]
    if len(rest) > cfg.library_songs:
        rest = [rest[i] for i in sorted(rng.choice(len(rest), cfg.library_songs, replace=False))]
    return rest, unknown


def query_plan(songs: list[Song], waves: dict[str, np.ndarray], n: int, rate: int, hop_samples: int,
               rng: np.random.Generator) -> list[tuple[str, int]]:
    """(song rel, start sample) for n queries; starts never within 10% of a library tile hop."""
    plan = []
    longest = int((10.0 + PRE_S) * rate) + 1
    for i in range(n):
        s = songs[i % len(songs)]
        length = len(waves[s.rel])
        for _ in range(100):
            start = int(rng.integers(int(PRE_S * rate), max(int(PRE_S * rate) + 1, length - longest)))
            phase = (start % hop_samples) / hop_samples
            if 0.1 < phase < 0.9:
                break
        plan.append((s.rel, start))
    return plan


def eval_queries(run: Run, lib_songs: list[Song], unknown: list[Song], waves: dict[str, np.ndarray], cfg: EvalConfig,
                 feats: FeatureConfig) -> tuple[list[np.ndarray], Babble, list[tuple[str, int, bool | None]]]:
    """The evaluation's rooms, talkers and (song rel, start sample, is a library song) plan for this draw: the
    same for every tool that replays its queries (`research/false_accepts.py`, `research/sweep.py`). A query
    of a song outside the library whose audio a library song holds too is neither (None): it is drawn, so
    the other queries stay the same, and not scored (`in_library_audio`)."""
    rate = feats.sample_rate
    rng = np.random.default_rng(cfg.seed + 1)
    rirs = load_eval_rirs(run, rate, rng)
    babble = Babble(Path(run.info["cache"]).parent / "eval_babble", rate).prepare()
    hop_samples = 11 * feats.hop_length
    plan = ([(r, s, True) for r, s in query_plan(lib_songs, waves, cfg.queries, rate, hop_samples, rng)]
            + [(r, s, False) for r, s in query_plan(unknown, waves, cfg.queries // 2, rate, hop_samples, rng)])
    library = [SongLandmarks.of(peaks(waves[s.rel])) for s in lib_songs]
    return rirs, babble, [(r, s, None if known is False and in_library_audio(waves[r], s, rate, library) else known)
                          for r, s, known in plan]


def in_library_audio(wave: np.ndarray, start: int, rate: int, library: list[SongLandmarks]) -> bool:
    """Whether the clean audio a query of `wave` takes from `start` (up to 10 s, as fast as 1.08x) is in a
    library song too, by the landmarks of its 3-s stretches (1.5 s apart) at one offset of a whole song.

    Songs of one soundtrack share loops and tracker patterns rendered alike: in the corpus, biniax tracks hold
    3-s stretches of one another at 20-47 standard deviations above chance, where stretches of songs from
    different packages reached 12 at most (471 stretches of 25 pairs; docs/decisions.md). A query made of a library
    song's audio is no test of rejecting music the library lacks, nor of naming the song it came from."""
    span = wave[start : start + int((10.0 * SPEEDS[-1] + 1.0) * rate)]
    step, n = int(1.5 * rate), int(3.0 * rate)
    for first in range(0, max(1, len(span) - n + 1), step):
        heard = pair(peaks(span[first : first + n]))
        if any(song_wide_evidence(heard, song).excess >= SHARED_AUDIO_EXCESS for song in library):
            return True
    return False


def make_query(cond: str, seconds: float, wave: np.ndarray, start: int, rate: int, rirs: list[np.ndarray],
               babble: Babble, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """The query of condition `cond` that starts at sample `start` of a song, and the speed it was played at.
    The room hears `PRE_S` seconds before the query too, so its reverberant tail is there."""
    n, pre = int(seconds * rate), int(PRE_S * rate)
    speed = float(SPEEDS[int(rng.integers(len(SPEEDS)))]) if cond.startswith("speed") else 1.0
    first = start - round(pre * speed)  # < 0 only for a query in a song's first second at > 1x
    music = np.concatenate([np.zeros(max(0, -first), np.float32), wave[max(0, first) : start + round(n * speed) + (speed != 1.0)]])
    if speed != 1.0:
        music = at_speed(music, speed)[: pre + n]
    if cond == "clean3":
        return music[pre : pre + n], speed
    rir = rirs[int(rng.integers(len(rirs)))]
    voices = babble.draw(len(music), rng) if cond.startswith("babble") else None
    return mic_chain(music, rate, rir, rng, pre, babble=voices)[:n], speed


def calibrate_threshold(known_correct: np.ndarray, known_scores: np.ndarray, unknown_scores: np.ndarray) -> float:
    """The threshold maximising (known queries accepted with the right song + unknown rejected) / 2."""
    cands = np.unique(np.concatenate([known_scores, unknown_scores]))
    best, best_t = -1.0, 0.5
    for t in cands:
        acc = np.mean(known_correct & (known_scores >= t)) + np.mean(unknown_scores < t)
        if acc > best:
            best, best_t = acc, float(t)
    # midway to the next lower score, so the threshold is not exactly a sample's score
    lower = cands[cands < best_t]
    return float((best_t + lower.max()) / 2) if len(lower) else best_t


def evaluate_run(run_dir: str | Path, cfg: EvalConfig = EvalConfig(), model: str | None = None) -> dict:
    from shazamlet.library import Library
    from shazamlet.recognition import Recognizer, Trace

    torch.set_num_threads(max(1, torch.get_num_threads()))
    started = time.time()
    run = Run(run_dir)
    data_root = Path(cfg.data or run.config.data).resolve()
    lib_songs, unknown = pick_sets(run, cfg)  # told before anything is written
    if missing := [s.rel for s in lib_songs + unknown if not (data_root / s.rel).is_file()]:
        raise ValueError(f"{data_root} has no {missing[0]} ({len(missing)} of the evaluation's songs missing): "
                         f"{run.folder} was trained on the songs of {run.config.data}; --data names where they are now")
    out = eval_folder(run, model, cfg.variant)
    if cfg.library_hop_frames != IndexConfig.library_hop_frames:
        out = out.with_name(f"{out.name}-hop{cfg.library_hop_frames}")
    if cfg.between_tiles != IndexConfig.between_tiles:
        out = out.with_name(f"{out.name}-{'with' if cfg.between_tiles else 'no'}-between")
    if cfg.landmarks != IndexConfig.landmarks:
        out = out.with_name(f"{out.name}-{'with' if cfg.landmarks else 'no'}-landmarks")
    if cfg.seed:  # the second draw of songs and queries beside the first
        out = out.with_name(f"{out.name}-draw{cfg.seed}")
    out.mkdir(parents=True, exist_ok=True)
    model_path = Path(model) if model else model_from_run(run, out / "model.pt", cfg.variant)
    embedder = TileEmbedder(load_model(model_path))
    feats = embedder.features
    rate = feats.sample_rate
    print(f"library {len(lib_songs)} songs, unknown {len(unknown)} songs", flush=True)
    waves = {s.rel: load_audio(data_root / s.rel, rate) for s in lib_songs + unknown}

    libdir = out / "library"
    shutil.rmtree(libdir, ignore_errors=True)
    lib = Library.open(libdir, embedder, create=True,
                       index_cfg=IndexConfig(library_hop_frames=cfg.library_hop_frames,
                                             between_tiles=cfg.between_tiles, landmarks=cfg.landmarks))
    lib.add([str(data_root / s.rel) for s in lib_songs], genre_from="folder", root=str(data_root))
    rec = Recognizer(lib, embedder, threshold=None)
    print(f"library built ({time.time() - started:.0f} s)", flush=True)

    rirs, babble, plan = eval_queries(run, lib_songs, unknown, waves, cfg, feats)
    genre_of = {s.rel: s.genre for s in lib_songs + unknown}
    records = []
    for cond, seconds in CONDITIONS:
        crng = np.random.default_rng([cfg.seed, len(cond)])
        for qi, (rel, start, known) in enumerate(plan):
            q, speed = make_query(cond, seconds, waves[rel], start, rate, rirs, babble, crng)
            if known is None:  # a library song's audio in a song outside the library: not scored
                continue
            tr = Trace()
            ans = rec.identify_wave(q, tr)
            cands = [str(Path(c.path).resolve()) for c in ans.candidates]
            truth = str((data_root / rel).resolve())
            records.append({"cond": cond, "q": qi, "song": rel, "known": known, "start_s": start / rate, "speed": speed,
                            "top1": bool(cands[:1] == [truth]), "top2": truth in cands[:2],
                            "raw": float(ans.raw_score), "genre": ans.genre.label if ans.genre else None,
                            "true_genre": genre_of[rel], "landmarks": tr.landmarks,
                            "fingerprint_top1": tr.fingerprint_song_id is not None
                            and str(Path(lib.song(tr.fingerprint_song_id).path).resolve()) == truth,
                            "fingerprint_raw": float(tr.fingerprint_raw_score),
                            "accepted": ans.song is not None,
                            "library_genre": tr.library_genre.votes if tr.library_genre else None,
                            "model_genre": tr.model_genre.votes if tr.model_genre else None})
        print(f"{cond}: done ({time.time() - started:.0f} s)", flush=True)

    (out / "queries.json").write_text(json.dumps(records))  # kept even if what follows fails
    result = summarise(records, cfg)
    # a model file evaluated on this run's split is described by its own metadata
    meta = embedder.model.meta
    label = meta.name if model else Path(run.folder).name
    from shazamlet.recognition.verify import RANKING

    result["ranking"] = RANKING if cfg.landmarks else None  # what `threshold` was calibrated on (export copies it)
    result.update({"model": str(model_path), "objective": meta.objective if model else run.config.objective,
                   "run": Path(run.folder).name, "model_name": label,
                   "library_songs": len(lib_songs), "unknown_songs": len(unknown), "eval": asdict(cfg),
                   "unknown_queries_in_library_audio": sum(known is None for _, _, known in plan),
                   "tile_projection": embedder.model.meta.extra.get("tile_projection"),
                   "minutes": round((time.time() - started) / 60, 1), "trained_on": embedder.model.meta.trained_on,
                   # what was measured: the run's step, or the model file's own hash (export and the card check them)
                   "step": None if model else meta.extra.get("step"),
                   "model_sha256": embedder.model.sha256 if model else None})
    (out / "eval.json").write_text(json.dumps(result, indent=1))  # before the figures: a figure cannot lose it
    from trainer.plots import confusion_png, tsne_png

    confusion_png(records, run.genres, out / "confusion.png", label)
    tsne_png(embedder, lib_songs, unknown, waves, out / "tsne.png", cfg.tsne_tiles_per_song, label)
    lib.close()
    print(json.dumps({k: v for k, v in result.items() if k in ("threshold", "conditions")}, indent=1), flush=True)
    return result


def load_eval_rirs(run: Run, rate: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The real impulse responses held out of training, or synthetic rooms if there are none."""
    out = []
    noise = run.config.noise
    for rel in run.info.get("eval_rirs", []):
        if noise and (Path(noise) / rel).exists():
            out.append(load_audio(Path(noise) / rel, rate))
    return out or synthetic_rooms(rate, rng)


def summarise(records: list[dict], cfg: EvalConfig) -> dict:
    known = [r for r in records if r["known"]]
    unknown = [r for r in records if r["known"] is False]
    ks = np.array([r["raw"] for r in known])
    kc = np.array([r["top1"] for r in known])
    us = np.array([r["raw"] for r in unknown])
    # calibrate on even-numbered queries, check on odd ones; the shipped threshold uses all of them
    ke = np.array([r["q"] % 2 == 0 for r in known])
    ue = np.array([r["q"] % 2 == 0 for r in unknown])
    t_half = calibrate_threshold(kc[ke], ks[ke], us[ue])
    thr = calibrate_threshold(kc, ks, us)
    held = {"threshold": t_half, "known_accepted_correct": float(np.mean(kc[~ke] & (ks[~ke] >= t_half))),
            "unknown_rejected": float(np.mean(us[~ue] < t_half))}
    conds = {}
    for cond, _ in CONDITIONS:
        k = [r for r in known if r["cond"] == cond]
        u = [r for r in unknown if r["cond"] == cond]
        gk = [r for r in k if r["true_genre"]]
        gu = [r for r in u if r["true_genre"]]
        conds[cond] = {
            "top1": float(np.mean([r["top1"] for r in k])), "top2": float(np.mean([r["top2"] for r in k])),
            "accepted_correct": float(np.mean([r["top1"] and r["raw"] >= thr for r in k])),
            "unknown_rejected": float(np.mean([r["raw"] < thr for r in u])) if u else float("nan"),
            # what the app does with the model file's own threshold and its evidence gate
            "named": float(np.mean([r["top1"] and r["accepted"] for r in k])),
            "unknown_accepted": float(np.mean([r["accepted"] for r in u])) if u else float("nan"),
            "genre_known": float(np.mean([r["genre"] == r["true_genre"] for r in gk])) if gk else float("nan"),
            "genre_unknown": float(np.mean([r["genre"] == r["true_genre"] for r in gu])) if gu else float("nan"),
            "n_known": len(k), "n_unknown": len(u),
        }
    result = {"threshold": thr, "threshold_check": held, "conditions": conds}
    if any(r.get("landmarks") for r in records):
        # the landmark check ranked these answers; the fingerprints alone would have answered
        # `fingerprint_*`: the threshold for a library without peaks (ModelMeta.threshold)
        fk = np.array([r["fingerprint_top1"] for r in known])
        result["fingerprint_threshold"] = calibrate_threshold(fk, np.array([r["fingerprint_raw"] for r in known]),
                                                              np.array([r["fingerprint_raw"] for r in unknown]))
        result["fingerprint_top1"] = {cond: float(np.mean([r["fingerprint_top1"] for r in known if r["cond"] == cond]))
                                      for cond, _ in CONDITIONS}
        result["landmark_answers"] = float(np.mean([bool(r.get("landmarks")) for r in records]))
    return result
