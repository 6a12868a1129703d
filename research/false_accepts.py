"""False accepts, measured: the evaluation's queries (the split, library and plan of `python -m trainer evaluate
--model`, recreated from the corpus without the training cache) and `identify FILE` on songs outside the library.

    python research/false_accepts.py SEED FILES OUT_DIR      # SEED 0 or 1; ~15 min per draw on 2 loaded cores

Writes OUT_DIR/answers<SEED>.json (accepted, top song, truth per query; named song per file). The run folder
is recreated as `runs/centre-ft` was (same config and seed, so the same split: 319 training songs, the rooms
StairwellL, dishR and street2-L held out). Research tool: not part of the product (docs/decisions.md).
"""
import json, sys, time
from dataclasses import asdict
from pathlib import Path
import numpy as np
from shazamlet.audio.decode import is_audio_file, load_audio
from shazamlet.config import FeatureConfig, IndexConfig
from shazamlet.library import Library
from shazamlet.model import TileEmbedder, load_model
from shazamlet.recognition import Recognizer
from trainer.cache import features_key
from trainer.evaluate import CONDITIONS, EvalConfig, eval_queries, make_query, pick_sets
from trainer.loop import EVAL_RIR_EVERY, Run
from trainer.settings import TrainConfig
from trainer.songs import genres_of, scan_songs, split_songs


def make_run(folder: Path, cache: Path, data: str = "/work/corpus", noise: str = "/work/corpus_NOISE") -> None:
    """runs/centre-ft's run.json (its config and seed give the split) without caching or room views."""
    folder.mkdir(parents=True, exist_ok=True)
    cfg = TrainConfig(data=data, noise=noise, cache=str(cache), objective="contrastive+classifier", out=str(folder),
                      batch=128, temperature=0.05, fingerprint_dim=64, room_views=6, p_room=0.5, p_colour=0.3,
                      centre_bands=True, seed=0)
    songs = scan_songs(cfg.data)
    split = split_songs(songs, cfg.seed)
    nroot = Path(noise).resolve()
    real = sorted(str(f.relative_to(nroot)) for f in (nroot / "rir_real").rglob("*") if f.is_file() and is_audio_file(f))
    info = {"config": asdict(cfg), "cache": str(cache / features_key(FeatureConfig())), "genres": genres_of(songs),
            "split": {"train": [s.rel for s in split.train], "val": [s.rel for s in split.val],
                      "test": [s.rel for s in split.test], "held_out_packages": split.held_out_packages},
            "songs": {s.rel: [s.genre, s.group, s.package] for s in songs},
            "eval_rirs": [rel for i, rel in enumerate(real) if i % EVAL_RIR_EVERY == 0]}
    (folder / "run.json").write_text(json.dumps(info, indent=1))


seed, n_other, out_dir = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
run = Run(out_dir / "runs" / "centre-ft") if (out_dir / "runs" / "centre-ft" / "run.json").exists() else None
if run is None:
    make_run(out_dir / "runs" / "centre-ft", out_dir / "cache")
    run = Run(out_dir / "runs" / "centre-ft")
cfg = EvalConfig(seed=seed)
emb = TileEmbedder(load_model(None))
rate = emb.features.sample_rate
data_root = Path(run.config.data).resolve()
lib_songs, unknown = pick_sets(run, cfg)
waves = {s.rel: load_audio(data_root / s.rel, rate) for s in lib_songs + unknown}
t0 = time.time()
lib = Library.open(out_dir / f"lib{seed}", emb, create=True, index_cfg=IndexConfig())
if lib.catalog.count() != len(lib_songs):
    lib.add([str(data_root / s.rel) for s in lib_songs], genre_from="folder", root=str(data_root))
rec = Recognizer(lib, emb, threshold=None)
out = []
rirs, babble, plan = eval_queries(run, lib_songs, unknown, waves, cfg, emb.features)
for cond, seconds in CONDITIONS:
    crng = np.random.default_rng([cfg.seed, len(cond)])
    for qi, (rel, start, known) in enumerate(plan):
        q, _ = make_query(cond, seconds, waves[rel], start, rate, rirs, babble, crng)
        if known is None:  # a library song's audio (`trainer.evaluate.in_library_audio`): not scored
            continue
        a = rec.identify_wave(q)
        top = str(Path(a.candidates[0].path).resolve()) if a.candidates else None
        out.append(dict(set="eval", cond=cond, known=known, truth=str((data_root / rel).resolve()), top=top,
                        accepted=a.song is not None, raw=a.raw_score))
    print(cond, time.time() - t0, flush=True)
    (out_dir / f"answers{seed}.json").write_text(json.dumps(out))
in_lib = {s.rel for s in lib_songs}
others = [s for s in scan_songs(run.config.data) if s.rel not in in_lib]
orng = np.random.default_rng([seed, 77])
for s in [others[i] for i in orng.permutation(len(others))[:n_other]]:
    a = rec.identify_file(s.path)
    out.append(dict(set="file", song=s.rel, accepted=a.song is not None, named=a.song.path if a.song else None))
(out_dir / f"answers{seed}.json").write_text(json.dumps(out))
print("done", time.time() - t0, flush=True)
