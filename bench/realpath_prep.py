"""Material for `bench.realpath`, made once and cached: library parts, query clips, a listening stream.

Run by `bench.realpath` as a subprocess (`python -P bench/realpath_prep.py JOB.json`) with PYTHONPATH
on a *committed* tree (the `--before` worktree), never on the working tree others are editing: the
clips must not change because someone's decoder is half rewritten, and both trees must hear the very
same samples. Clips go through the trainer's own waveform room chain (`trainer.degrade_wave.mic_chain`,
what `python -m trainer evaluate` uses for mic3 and babble3), with the corpus' real room impulse
responses and, for voices, four of the corpus' speech recordings mixed at 0 dB (the evaluation's
babble3 uses espeak voices; the corpus' recorded speech is closer to people in a room).
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 22_050
PRE_S = 1.0  # sound before a clip that feeds the room's tail (as the evaluation's PRE_S)
SPEECH_DIRS = ("speech_en_telephony", "speech_nl", "speech_cs", "speech_tts_en")
N_SPEECH = 48  # recordings kept in memory for the voices


def _load(path: str) -> np.ndarray:
    from shazamlet.audio.decode import load_audio

    return load_audio(path, RATE)


def _write_parts(task: tuple[str, list[tuple[str, float, float]]]) -> int:
    """Cut one corpus track into parts; each written as a FLAC file of its own (a song of the library)."""
    src, parts = task
    wave = _load(src)
    for out, start, end in parts:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        tmp = out + ".tmp.flac"
        sf.write(tmp, wave[int(start * RATE): int(end * RATE)], RATE, subtype="PCM_16", format="FLAC")
        Path(tmp).rename(out)
    return len(parts)


def write_parts(job: dict) -> None:
    """job["tracks"]: [source, [[out, start_s, end_s], ...]]; parts already on disk are skipped."""
    from tqdm import tqdm

    todo = [(src, [p for p in parts if not Path(p[0]).exists()]) for src, parts in job["tracks"]]
    todo = [t for t in todo if t[1]]
    with ProcessPoolExecutor(max_workers=2) as pool:
        for _ in tqdm(pool.map(_write_parts, todo), total=len(todo), desc="cutting library parts", unit="track"):
            pass


def _voices(noise_root: Path, rng: np.random.Generator) -> list[np.ndarray]:
    from trainer.degrade_wave import rms

    files = sorted(f for d in SPEECH_DIRS for f in (noise_root / d).glob("*") if f.is_file())
    out = []
    for i in rng.permutation(len(files)):
        if len(out) >= N_SPEECH:
            break
        w = _load(str(files[i]))[: 60 * RATE]
        if len(w) > 2 * RATE and rms(w) > 1e-4:
            out.append(w / rms(w))
    return out


def _babble(voices: list[np.ndarray], n: int, rng: np.random.Generator, talkers: int = 4) -> np.ndarray:
    """`talkers` different recorded voices at equal level, like the evaluation's `Babble.draw`."""
    from trainer.degrade_wave import looped

    out = np.zeros(n, np.float32)
    for i in rng.choice(len(voices), size=talkers, replace=False):
        out += looped(voices[i], n, rng)
    return out


def make_clips(job: dict) -> None:
    """job: songs (paths), positions, seconds, out (folder), noise (corpus_NOISE), seed, stream_s.

    Writes out/<cond>/<i>.wav for cond in clean3, mic3, babble3 (the same position of the same song
    in each condition, as the evaluation plans its queries), out/clips.json (truth per clip) and
    out/stream.wav: `stream_s` of the first song through a room, what the window listens to.
    """
    from tqdm import tqdm
    from trainer.degrade_wave import mic_chain

    out, seconds, rng = Path(job["out"]), float(job["seconds"]), np.random.default_rng(job["seed"])
    noise = Path(job["noise"])
    rirs = [_load(str(f)) [: 3 * RATE] for f in sorted((noise / "rir_real").glob("*.wav"))]
    voices = _voices(noise, rng)
    songs, n_pos = job["songs"], int(job["positions"])
    n, pre = int(seconds * RATE), int(PRE_S * RATE)
    records, cache = [], {}
    for i in tqdm(range(n_pos), desc=f"clips {out.name}", unit="clip"):
        path = songs[int(rng.integers(len(songs)))] if n_pos > len(songs) else songs[i * len(songs) // n_pos]
        wave = cache[path] if path in cache else _load(path)
        cache = {path: wave}
        start = int(rng.integers(pre, max(pre + 1, len(wave) - n)))
        music = wave[start - pre: start + n]
        conds = {"clean3": music[pre:]}
        for cond in ("mic3", "babble3"):
            rir = rirs[int(rng.integers(len(rirs)))]
            bab = _babble(voices, len(music), rng) if cond == "babble3" else None
            conds[cond] = mic_chain(music, RATE, rir, rng, pre, babble=bab)
        for cond, q in conds.items():
            (out / cond).mkdir(parents=True, exist_ok=True)
            sf.write(out / cond / f"{i:03d}.wav", np.asarray(q, np.float32), RATE, subtype="FLOAT")
        records.append({"i": i, "song": path, "start_s": start / RATE})
    first = _load(songs[0])
    s = max(pre, len(first) // 3)
    music = first[s - pre: s + int(job["stream_s"] * RATE)]
    stream = mic_chain(music, RATE, rirs[0], rng, pre)
    sf.write(out / "stream.wav", stream, RATE, subtype="FLOAT")
    (out / "clips.json").write_text(json.dumps({"clips": records, "stream_song": songs[0], "rate": RATE}))


def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text())
    {"parts": write_parts, "clips": make_clips}[job["kind"]](job)


if __name__ == "__main__":
    main()
