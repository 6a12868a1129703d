"""`python -m trainer report RUN --model FILE`: the model card of a model file, from its own description and the
evaluations of it on the run's split (`evaluate RUN --model FILE --seed 0` and `--seed 1`).

The card describes the model as it is: data, architecture, how it is made, accuracy per condition on both
draws at its threshold, the paper's ablation, known limits and how to reproduce it. Figures are copied
beside it. Prose that numbers cannot carry (known limits) comes from the recipe's `limits`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from shazamlet.files import file_sha256
from trainer.evaluate import CONDITIONS
from trainer.loop import Run

CARD = "MODEL_CARD.md"
PAPER = "paper"  # the card folder's evaluations of the paper's objectives (the ablation), `<objective>-eval.json`
CONDITION_TEXT = {"clean3": "3 s, clean", "mic3": "3 s, laptop microphone in a room",
                  "babble3": "3 s, room + 4 people talking at the music's level",
                  "mic10": "10 s, laptop microphone in a room", "speed3": "3 s, played 0.92-1.08x as fast, room",
                  "babble10": "10 s, room + 4 people talking"}


def _pct(x: float | None) -> str:
    return "-" if x is None or x != x else f"{100 * x:.1f}%"


def _draws(run: Run, model: Path) -> list[dict]:
    folder = Path(run.folder)
    found, digest = [], None
    for name in (f"eval-{model.stem}", f"eval-{model.stem}-draw1"):
        p = folder / name / "eval.json"
        if p.exists():  # a file on disk: checked before the card reads its numbers
            try:
                doc = json.loads(p.read_text())
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                raise ValueError(f"{p}: not an evaluation ({exc}): evaluate again") from None
            if not isinstance(doc, dict) or not isinstance(doc.get("conditions"), dict):
                raise ValueError(f"{p}: not an evaluation (no `conditions`): evaluate again")
            digest = digest or (file_sha256(model) if doc.get("model_sha256") else None)
            if doc.get("model_sha256") and doc["model_sha256"] != digest:  # another file of that name
                raise ValueError(f"{p} measured another model file than {model} (or it changed since): evaluate again")
            found.append(doc)
    if not found:
        raise FileNotFoundError(f"no evaluation of {model.name} in {folder}: run `python -m trainer evaluate "
                                f"{folder} --model {model}` (and `--seed 1`) first")
    return found


def _named(c: dict) -> tuple[float, float]:
    """(library clips named right, unknown clips rejected) as the app answers: the model file's own threshold
    and evidence gate (older evaluations: at the threshold they calibrated)."""
    if "named" in c:
        return c["named"], 1.0 - c["unknown_accepted"]
    return c["accepted_correct"], c["unknown_rejected"]


def accuracy_table(draws: list[dict]) -> list[str]:
    """Per condition and draw: top-1, named (accepted and right), unknown rejected; genre of library and
    unknown clips pooled over the draws; a pooled row."""
    head = "| condition | " + " | ".join(f"top-1 d{i} | named d{i} | unknown rejected d{i}" for i in range(len(draws)))
    lines = [head + " | genre: library / unknown songs |", "|---" * (2 + 3 * len(draws)) + "|"]
    for cond, _ in CONDITIONS:
        cells = []
        present = [d["conditions"][cond] for d in draws if cond in d["conditions"]]
        for d in draws:
            c = d["conditions"].get(cond)
            cells += [_pct(c["top1"]), *(_pct(x) for x in _named(c))] if c else ["-"] * 3
        genre = (f"{_pct(sum(c['genre_known'] for c in present) / len(present))} / "
                 f"{_pct(sum(c['genre_unknown'] for c in present) / len(present))}") if present else "-"
        lines.append(f"| {cond}: {CONDITION_TEXT.get(cond, cond)} | " + " | ".join(cells) + f" | {genre} |")
    pooled = []
    for d in draws:
        cs = [d["conditions"][c] for c, _ in CONDITIONS if c in d["conditions"]]
        pooled += [_pct(sum(c["top1"] for c in cs) / len(cs)), _pct(sum(_named(c)[0] for c in cs) / len(cs)),
                   _pct(sum(_named(c)[1] for c in cs) / len(cs))]
    lines.append("| **all conditions** | " + " | ".join(pooled) + " | |")
    return lines


def paper_table(folder: Path) -> list[str]:
    rows = sorted((folder / PAPER).glob("*-eval.json")) if (folder / PAPER).is_dir() else []
    if not rows:
        return ["(no evaluations in " + str(folder / PAPER) + ")"]
    lines = ["| objective | training | clean3 top-1 | mic3 top-1 | genre of library songs, clean3 |", "|---|---|---|---|---|"]
    for p in rows:
        r = json.loads(p.read_text())
        c = r["conditions"]
        lines.append(f"| {r['objective']} | {r.get('trained_on', '').split(', ')[-1]} | {_pct(c['clean3']['top1'])} | "
                     f"{_pct(c['mic3']['top1'])} | {_pct(c['clean3']['genre_known'])} |")
    return lines


def _stage_minutes(recipe, stage, done: dict) -> str:
    """How long a stage took: a training stage's own record of its training time, which adds up the runs an
    interruption split it into (the recipe's record holds its last run's wall time only)."""
    try:
        if stage.kind == "train":
            rows = json.loads((recipe.run_folder(stage.name) / "metrics.json").read_text())
            return f"{rows[-1]['minutes']:.0f}"
        if stage.kind == "tune-tiles":
            from trainer.tune_tiles import load_tuned

            o = stage.options
            state = load_tuned(Run(recipe.run_folder(o["run"])), o["tile_dim"], o.get("residual", 0))
            return f"{state['minutes']:.0f}"
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        pass
    minutes = done.get(stage.name, {}).get("minutes")
    return "-" if minutes is None else f"{minutes:.0f}"


def data_section(run: Run) -> list[str]:
    """What the run was trained and judged on: the project's corpus, or a user's GTZAN- or FMA-style folders
    (without a `manifest.tsv` every file is its own song and package, as the run's songs record)."""
    split, config = run.info["split"], run.info["config"]
    data, noise = Path(config["data"]), config.get("noise")
    styles = ", ".join(run.genres)
    held = split.get("held_out_packages", [])
    named = ", ".join(held[:8]) + (f" and {len(held) - 8} more" if len(held) > 8 else "")
    by_manifest = any(package != rel for rel, (_, _, package) in run.info["songs"].items())
    if by_manifest and (data / "_licenses").is_dir():
        music = f"The corpus `../shared/corpus/build.sh` lays out: freely licensed music from Debian packages in style folders ({styles})"
    else:
        music = f"The music of `{data.name or data}/`, one folder per style ({styles})"
    music += ", noise recordings and room impulse responses." if noise else "; no noise recordings."
    if by_manifest:
        grouped, whole = "song group and package", "whole packages are"
    else:
        grouped, whole = "file (no `manifest.tsv` groups them)", f"{len(held)} files are"
    return [f"{music} Songs are split by {grouped}: {len(split['train'])} training, {len(split['val'])} validation, "
            f"{len(split['test'])} test songs; {whole} held out for songs outside the library ({named})."
            + (" Every third real impulse response is held out of training for the evaluation's rooms." if noise else "")]


def write_card(run_dir: str | Path, model: str | Path, out: str | Path, recipe=None) -> Path:
    """Write `out`/MODEL_CARD.md (+ figures) for `model` evaluated on the run at `run_dir`; `recipe` (a
    `trainer.recipe.Recipe`) adds how it is made and its known limits."""
    from shazamlet.model import load_model

    run, model, out = Run(run_dir), Path(model), Path(out)
    loaded = load_model(model)  # not a model file: told as such, before its evaluations are looked for
    draws = _draws(run, model)
    meta = loaded.meta
    out.mkdir(parents=True, exist_ok=True)
    tp = meta.extra.get("tile_projection") or {}
    style = (meta.extra.get("style_head") or {}).get("held_out") or {}
    lines = [f"# Model card: {model.name}", "",
             "The encoder Shazamlet ships: it turns each ~3 s, 64x64 log-mel tile of music into a fingerprint; "
             "the app finds a clip's song among the user's own library by those fingerprints and the spectral "
             "peaks they point to, and votes its genre.", "",
             "## Model", "",
             f"- File: `{model}` ({model.stat().st_size / 1e6:.0f} MB, {meta.extra.get('precision', 'float32')}"
             f"{', with its ONNX graph for CPUs' if loaded.graph else ''}); name `{meta.name}`, objective `{meta.objective}`.",
             f"- Encoder: ResNet18 on 64x64 log-mel tiles (22.05 kHz, 64 bands, hop 1024), each band's mean taken out "
             f"of the tile; a {meta.embedding_dim}-d embedding, a {meta.fingerprint_dim}-d fingerprint head.",
             f"- Fingerprint: the encoder's {meta.fingerprint_dim}-d fingerprint and a {tp.get('dim', 0)}-d "
             f"fingerprint of the band-centred tile ({tp.get('method', 'none')}), the latter "
             f"{100 * tp.get('weight', 0):.0f}% of the cosine." if tp else
             f"- Fingerprint: the encoder's {meta.fingerprint_dim}-d fingerprint.",
             f"- Genre: a classifier on the embedding (library songs vote with their own labels); a style head on each "
             f"tile's spectral envelope and rhythm names the genre of songs not in the library "
             f"(held-out collections: {_pct(style.get('balanced'))} balanced).",
             f"- Thresholds: {meta.threshold:.3f} on fingerprint scores, {meta.landmark_threshold or 0:.3f} on scores "
             f"ranked with peak evidence ({meta.extra.get('ranking', '')}).",
             f"- Trained on: {meta.trained_on}.", "",
             "## Data", "",
             *data_section(run), "",
             "## Accuracy", "",
             f"`python -m trainer evaluate RUN --model {model}` on two draws (`--seed 0`, `--seed 1`): a library of "
             f"{draws[0]['library_songs']} test songs, {draws[0]['unknown_songs']} unknown songs held out of "
             f"training, {draws[0]['conditions']['clean3']['n_known']} queries of library songs and "
             f"{draws[0]['conditions']['clean3']['n_unknown']} of unknown songs per condition, at random offsets "
             f"never aligned with the library's tiles, through the app's own recognizer (`identify_wave`) at the "
             f"model's own threshold (one for every condition) and its check that an answer's peaks say more than chance. "
             f"*Named*: accepted and the right song; *top-1*: the right song ranked first, accepted or not.", "",
             *accuracy_table(draws), "",
             "Rooms and noise are made on the waveform (`trainer/degrade_wave.py`): "
             f"{'held-out real impulse responses' if run.info.get('eval_rirs') else 'synthetic rooms (no impulse responses)'}, "
             "pink noise at 10 dB, 120 Hz-7 kHz band-limiting, random gain and clipping; voices are espeak-ng "
             "reading texts training never heard.", ""]
    lines += ["## The paper's method, reproduced", "",
              "The paper: a ResNet18 autoencoder with an auxiliary genre classifier, ANNOY k-NN votes; 76% song ID on "
              "clean 3-s clips, 63% genre. The same split, library and queries (short training runs):", "",
              *paper_table(out), "",
              "The autoencoders' embeddings find clean clips as the paper reports and collapse through a microphone: "
              "reconstruction keeps what a room destroys. The contrastive fingerprint trained on degraded views is "
              "what this model builds on.", ""]
    if recipe is not None:
        done = json.loads((recipe.runs / "recipe.json").read_text()) if (recipe.runs / "recipe.json").exists() else {}
        lines += ["## How it is made", ""]
        if meta.name in done or Path(run.folder).name in done:
            lines += [f"`python -m trainer recipe {recipe.path}` ran these stages (it resumes after an interruption). "
                      "A training stage's minutes are its training time over all its runs (on a CPU, CPU time over "
                      "the threads); the other stages' are the wall time of their last run.",
                      "", "| stage | kind | minutes | device |", "|---|---|---|---|"]
            lines += [f"| {st.name} | {st.kind} | {_stage_minutes(recipe, st, done)} | "
                      f"{done.get(st.name, {}).get('device', '-')} |" for st in recipe.stages]
        else:
            lines += [f"This file was made before `{recipe.path}` existed, by the stages its description names (above). "
                      f"`python -m trainer recipe {recipe.path}` rebuilds a model of this design in one command, "
                      f"with playback-speed changes and harsher voices in training: "
                      + ", ".join(f"{st.name} ({st.kind})" for st in recipe.stages) + "."]
        lines += ["", "## Known limits", "", recipe.limits.strip(), ""]
    for name in ("confusion.png", "tsne.png"):
        src = Path(run.folder) / f"eval-{model.stem}" / name
        if src.exists():
            shutil.copyfile(src, out / name)
            lines.append(f"![{name[:-4]}]({name})")
    text = "\n".join(lines).rstrip() + "\n"
    tmp = out / (CARD + ".tmp")
    tmp.write_text(text)
    tmp.replace(out / CARD)
    return out / CARD
