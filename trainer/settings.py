"""A training run's settings (`TrainConfig`, what `run.json` keeps) and the range each must lie in.

One place for both the command line's `train` flags and a recipe's training stages: a value out of range is
told in one line before any work, not as NaN weights or a traceback hours in.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from trainer.augment import DegradeParams


@dataclass
class TrainConfig:
    data: str
    objective: str
    out: str
    noise: str | None = None
    cache: str = "cache"
    epochs: int = 10
    steps_per_epoch: int = 0  # 0: tiles_per_song x training songs / batch
    tiles_per_song: int = 32
    batch: int = 128  # contrastive: pairs (2x tiles per step)
    lr: float = 1e-3
    warmup: int = 50
    temperature: float = 0.07
    cls_weight: float | None = None
    seed: int = 0
    max_songs: int = 0  # quick ablations: train on a random subset of this many songs
    minutes: float = 0.0  # stop (checkpointed, resumable) after this much training in total (`training_clock`)
    ckpt_minutes: float = 3.0
    val_pairs: int = 256
    fingerprint_dim: int = 128  # contrastive objectives: the fingerprint head's output
    room_views: int = 0  # waveform-degraded copies of each training song (`trainer.wave_views`)
    p_room: float = 0.5  # share of positives drawn from those copies
    p_colour: float = 0.0  # share of mel-domain views strongly coloured (`DegradeParams.p_colour`)
    centre_bands: bool = False  # the encoder takes each band's mean out of a tile (`shazamlet.model.resnet`)
    p_speed: float = 0.0  # share of positives played faster or slower, tempo and pitch (`augment.speed_warp`)
    max_speed_change: float = 0.10  # ... by up to this much (0.10: 0.90-1.10x, a DJ's pitch control)
    babble_voices: tuple[int, int] = DegradeParams.babble_voices  # people talking in the mel-domain views ...
    babble_snr_db: tuple[float, float] = DegradeParams.babble_snr_db  # ... this far under / over the music

    @classmethod
    def from_run(cls, saved: dict) -> "TrainConfig":
        """The config a run.json saved; keys that are no longer settings (`extra`, always empty) are left out."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in saved.items() if k in known})


# the range each training setting must lie in, (low, high, low excluded): out of it a run failed hours in,
# trained to NaN and was marked done (temperature 0, speeds of 2.0), or finished at once (a negative count)
SETTING_RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    "epochs": (1, None, False), "batch": (2, None, False), "steps_per_epoch": (0, None, False),
    "tiles_per_song": (1, None, False), "lr": (0, 1, True), "warmup": (0, None, False), "temperature": (0, None, True),
    "cls_weight": (0, None, False), "seed": (0, None, False), "max_songs": (0, None, False), "minutes": (0, None, False),
    "ckpt_minutes": (0, None, True), "val_pairs": (2, None, False), "fingerprint_dim": (1, None, False),
    "room_views": (0, None, False), "p_room": (0, 1, False), "p_colour": (0, 1, False), "p_speed": (0, 1, False),
    "max_speed_change": (0, 0.5, False), "babble_voices": (1, 16, False), "babble_snr_db": (-40, 40, False),
}


def setting_problem(settings: dict, ranges: dict = SETTING_RANGES) -> tuple[str, str] | None:
    """The first setting out of its range (by default training's: TrainConfig's names), and the range in
    words; None if none is. The one check of both the command line's flags and a recipe's stages."""
    for key, (low, high, open_low) in ranges.items():
        value = settings.get(key)
        if value is None:
            continue
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        bad = [v for v in values if (low is not None and (v <= low if open_low else v < low))
               or (high is not None and v > high)]
        reversed_ = len(values) == 2 and values[0] > values[1]
        if bad or reversed_:
            if high is None:
                words = f"more than {low}" if open_low else f"at least {low}"
            else:
                words = f"more than {low} and at most {high}" if open_low else f"between {low} and {high}"
            return key, words + (", the low end first" if reversed_ else "")
    return None
