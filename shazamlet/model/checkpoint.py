"""The model file: encoder weights plus a description of how to use them.

A model file is a `torch.save`d dict of plain tensors and plain Python values, loaded with
`weights_only=True` so that opening an untrusted file never runs code. It describes itself (nanoGPT
habit): architecture, front-end config, genres, the calibrated acceptance threshold, and what it was
trained on, so loading never depends on command-line flags. It may also hold the encoder's ONNX graph
without weights (`shazamlet.model.graph`), which runs the file's own weights on a CPU.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from shazamlet.config import FeatureConfig
from shazamlet.files import file_sha256
from shazamlet.model.resnet import Encoder
from shazamlet.model.style import StyleHead, n_style_features

FORMAT = "shazamlet-model/1"
DEFAULT_MODEL_NAME = "shazamlet-default.pt"
# shipped inside the package, so that a wheel or a plain `pip install` has it
BUNDLED_MODEL = Path(str(importlib.resources.files("shazamlet.model") / DEFAULT_MODEL_NAME))


class ModelError(Exception):
    """A model file that cannot be used; the message is one line for the user."""


@dataclass
class ModelMeta:
    name: str
    objective: str
    embedding_dim: int = 1024
    fingerprint_dim: int | None = 128
    centre_bands: bool = False  # the encoder takes each band's mean out of a tile first (`centre_bands`)
    tile_dim: int = 0  # a linear fingerprint of the band-centred tile is appended (`TileProjection`)
    tile_weight: float = 0.0  # its share of the cosine
    tile_residual: int = 0  # channels of its convolutional residual (`TileResidual`); 0: purely linear
    genre_head: bool = False  # the trainer's genre classifier over `genres` is in the file (`Encoder.genre_head`)
    style_head: bool = False  # a style classifier over `genres` on the tile itself (`shazamlet.model.style`)
    features: dict = field(default_factory=lambda: FeatureConfig().to_dict())
    genres: list[str] = field(default_factory=list)
    # Calibrated on the trainer's evaluation: match scores at or above it are "in your library".
    threshold: float = 0.5
    # the same for answers the landmark check ranked (shazamlet/landmarks.py); None: calibrated before it
    landmark_threshold: float | None = None
    trained_on: str = ""
    extra: dict = field(default_factory=dict)

    def feature_config(self) -> FeatureConfig:
        return FeatureConfig.from_dict(self.features)


def default_model_path() -> Path:
    """The bundled model; `SHAZAMLET_MODEL` overrides it."""
    env = os.environ.get("SHAZAMLET_MODEL")
    return Path(env) if env else BUNDLED_MODEL


def save_model(path: str | Path, encoder: Encoder, meta: ModelMeta, half: bool = False, graph: bool = False) -> str:
    """Write a model file atomically (temp file + rename); returns its sha256. With `graph`, the file holds
    the encoder's ONNX graph too (`shazamlet.model.graph.export_graph`: ~15 s, needs onnx and onnxscript)."""
    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
             for k, v in encoder.state_dict().items()}
    # The encoder's own input step is what the loader must rebuild, whatever the meta was given.
    shape = {"centre_bands": encoder.centre_bands, "tile_dim": encoder.tile_dim, "tile_weight": encoder.tile_weight,
             "tile_residual": encoder.tile_residual, "genre_head": encoder.genre_head is not None,
             "style_head": encoder.style_head is not None}
    for head, n in (("genre", encoder.genre_head and encoder.genre_head.net[-1].out_features),
                    ("style", encoder.style_head and encoder.style_head.n_genres)):
        if n and n != len(meta.genres):
            raise ValueError(f"the {head} head has {n} outputs for {len(meta.genres)} genres")
    payload = {"format": FORMAT, "meta": meta.__dict__ | shape, "encoder": state}
    if graph:
        from shazamlet.model.graph import export_graph

        fc = meta.feature_config()
        onnx, reads = export_graph(encoder, (fc.n_mels, fc.tile_frames))
        payload["graph"] = {"onnx": torch.frombuffer(bytearray(onnx), dtype=torch.uint8), "reads": reads}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a model file is meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return file_sha256(path)


# what decides a model's fingerprints, besides its weights: a file that differs only in the rest (its
# thresholds, its genre or style classifier, what it says it was trained on) makes the same fingerprints
FINGERPRINT_FIELDS = ("embedding_dim", "fingerprint_dim", "centre_bands", "tile_dim", "tile_weight", "tile_residual",
                      "features")


def fingerprints_sha256(payload: dict[str, Any]) -> str:
    """The sha256 of what makes a model file's fingerprints: its encoder weights (the genre and style
    heads' aside) and the FINGERPRINT_FIELDS of its meta. A library records it, so recalibrating a model's
    thresholds does not make its libraries re-embed every song, while any change to the weights does."""
    h = hashlib.sha256()
    meta = payload["meta"]
    h.update(repr([(k, meta.get(k)) for k in FINGERPRINT_FIELDS]).encode())
    for name in sorted(payload["encoder"]):
        if name.startswith(("genre_head.", "style_head.")):
            continue
        t = payload["encoder"][name]
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).contiguous().view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


@dataclass
class LoadedModel:
    encoder: Encoder
    meta: ModelMeta
    path: Path
    fingerprints: str = ""  # `fingerprints_sha256`: what a library built with this model records
    half: bool = False  # the file stores float16 weights (they are float32 once loaded)
    graph: tuple[bytes, list[str]] | None = None  # the encoder's ONNX graph and the weights it reads, if any

    @property
    def short_hash(self) -> str:
        return self.fingerprints[:12]

    @functools.cached_property
    def sha256(self) -> str:
        """The file's own sha256, which only libraries of earlier versions recorded: read when one is
        met, not at every start (~40 ms); "" if the file cannot be read any more (it matches nothing)."""
        try:
            return file_sha256(self.path)
        except OSError:
            return ""


def _number(value: Any, low: float, high: float, integer: bool = False) -> bool:
    """Whether `value` is a finite number in [low, high] (an int where `integer`; never a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        return False
    return low <= value <= high


def invalid_settings(meta: ModelMeta) -> str | None:
    """What is wrong with a model file's settings (one line), or None: checked on load, because the front
    end and the threshold would otherwise fail far from the file (a division by zero in `identify`, every
    music file blamed by `library add`)."""
    f = meta.features
    if not isinstance(f, dict):
        return "features is not a table of settings"
    checks = [("sample_rate", 4000, 192_000, True), ("n_fft", 16, 65_536, True), ("hop_length", 1, 65_536, True),
              ("n_mels", 1, 1024, True), ("tile_frames", 1, 4096, True), ("f_min", 0, 96_000, False),
              ("f_max", 1, 96_000, False), ("top_db", 1, 300, False), ("silence_db", -400, 0, False)]
    for key, low, high, integer in checks:
        if key in f and not _number(f[key], low, high, integer):
            return f"{key} = {f[key]!r} (expected {'a whole number' if integer else 'a number'} from {low} to {high})"
    fc = meta.feature_config()
    if fc.f_min >= fc.f_max or fc.f_max > fc.sample_rate / 2 + 1:
        return f"f_min = {fc.f_min}, f_max = {fc.f_max} (expected 0 <= f_min < f_max <= sample_rate / 2)"
    if fc.hop_length > fc.n_fft:
        return f"hop_length = {fc.hop_length} is longer than n_fft = {fc.n_fft}"
    for key in ("threshold", "landmark_threshold"):
        value = getattr(meta, key)
        if (value is not None or key == "threshold") and not _number(value, 0.0, 1.0):
            return f"{key} = {value!r} (expected a number from 0 to 1)"
    for key, high in (("embedding_dim", 65_536), ("fingerprint_dim", 65_536), ("tile_dim", 65_536)):
        value = getattr(meta, key)
        if value is not None and not _number(value, 0 if key == "tile_dim" else 1, high, True):
            return f"{key} = {value!r} (expected a whole number from 1 to {high})"
    if not isinstance(meta.genres, list) or not all(isinstance(g, str) for g in meta.genres):
        return "genres is not a list of names"
    return None


def load_model(path: str | Path | None = None, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a model file safely; ModelError with one line if it is missing or not a model."""
    p = Path(path) if path else default_model_path()
    if not p.exists():
        raise ModelError(f"model file not found: {p} (train one with `python -m trainer`, or pass --model)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            payload: dict[str, Any] = torch.load(p, map_location="cpu", weights_only=True)
    except Exception:
        raise ModelError(f"{p}: not a readable Shazamlet model file (corrupt, or another kind of file)") from None
    if isinstance(payload, dict) and {"modules", "optim", "step"} <= payload.keys():
        raise ModelError(f"{p}: a training run's checkpoint, not a model file: `python -m trainer export "
                         f"{p.parent}` writes the model file")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelError(f"{p}: not a Shazamlet model file (expected format {FORMAT})")
    try:
        meta = ModelMeta(**payload["meta"])
    except Exception as exc:
        raise ModelError(f"{p}: not a Shazamlet model file (its description does not read: "
                         f"{str(exc).splitlines()[0][:120]})") from None
    if problem := invalid_settings(meta):
        raise ModelError(f"{p}: invalid model settings: {problem}")
    try:
        with torch.device("meta"):  # no storage and no random initialisation: the file's weights replace them
            encoder = Encoder(meta.embedding_dim, meta.fingerprint_dim, meta.centre_bands, meta.tile_dim,
                              meta.tile_weight, meta.feature_config().n_mels * meta.feature_config().tile_frames,
                              len(meta.genres) if meta.genre_head else 0, meta.tile_residual)
            if meta.style_head:
                fc = meta.feature_config()
                encoder.attach_style_head(StyleHead(n_style_features(fc.n_mels, fc.tile_frames), len(meta.genres)))
        encoder.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in payload["encoder"].items()},
                                assign=True)
    except Exception as exc:
        raise ModelError(f"{p}: model weights do not match their description ({str(exc).splitlines()[0][:160]})") from None
    encoder.eval().to(device)
    half = any(v.dtype == torch.float16 for v in payload["encoder"].values())
    return LoadedModel(encoder, meta, p, fingerprints_sha256(payload), half, _graph(payload.get("graph"), p))


def _graph(record: Any, path: Path) -> tuple[bytes, list[str]] | None:
    """The file's graph as saved by `save_model`, or None when it has none; whether it runs is checked
    where it is first used (`TileEmbedder`)."""
    if record is None:
        return None
    onnx, reads = (record.get("onnx"), record.get("reads")) if isinstance(record, dict) else (None, None)
    if (not isinstance(onnx, torch.Tensor) or onnx.dtype != torch.uint8 or onnx.dim() != 1
            or not isinstance(reads, list) or not all(isinstance(r, str) for r in reads)):
        raise ModelError(f"{path}: its encoder graph is damaged (not the bytes and weight names a graph is saved as)")
    return onnx.numpy().tobytes(), reads
