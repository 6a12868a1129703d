"""Frozen configuration shared by the app and the trainer.

No Qt and no torch here: these dataclasses are read by every layer, and a model file records the
`FeatureConfig` it was trained with so that a library tile and a live tile are always computed the
same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


@dataclass(frozen=True)
class FeatureConfig:
    """The log-mel front end (the paper's: 22.05 kHz, n_fft 2048, hop 1024, 64 bands, 64x64 tiles).

    Tiles are normalised *per tile* against their own loudest bin with a fixed dynamic range, so a
    tile does not depend on what surrounds it in the file and a gain change does not move it.
    """

    sample_rate: int = 22_050
    n_fft: int = 2048
    hop_length: int = 1024
    n_mels: int = 64
    f_min: float = 0.0
    f_max: float = 11_025.0
    tile_frames: int = 64
    top_db: float = 80.0
    # A tile whose loudest mel bin is below this power (dB re full scale) is silence.
    silence_db: float = -90.0

    @property
    def frame_seconds(self) -> float:
        return self.hop_length / self.sample_rate

    @property
    def tile_seconds(self) -> float:
        """Duration of audio one tile covers (64 frames = 2.97 s)."""
        return ((self.tile_frames - 1) * self.hop_length + self.n_fft) / self.sample_rate

    @property
    def tile_samples(self) -> int:
        return (self.tile_frames - 1) * self.hop_length + self.n_fft

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class IndexConfig:
    """How a library is tiled and searched.

    `library_hop_frames` = 22 frames = 1.02 s: a query starting anywhere is at most 0.51 s from a
    library tile (>= 83 % overlap; the contrastive training shifts views by up to 0.5 s), indexing
    costs ~1 encoder pass per second of audio (421x realtime on two CPU cores against 223x at 0.51 s)
    and a 10 000-song library is half the size; song-ID measured the same at 0.51 and 1.02 s
    (bench/RESULTS.md, R1). Query tiles keep a finer hop: more votes at more alignments.
    `search_k` = 3000: with the default (n_trees * k) the right song's tiles fall out of the 10
    neighbours as the library grows (0.79 at 10 000 songs, 1.00 with 1000; bench R3). Fingerprints with
    a noise-whitened tile projection spread their variance over many more directions, which ANNOY's
    random splits find harder: on the evaluation's library (~11 000 tiles, 256-d) 1000 kept 85% of the
    exact 10 nearest tiles of microphone queries and lost 6 points of single-tile top-1; 3000 keeps 96%
    and loses 1 point, for about 3x the 0.27 ms per query tile at 10 000 songs.
    From `ivf_min_items` tiles on (~4 300 songs of 4 min) the library is indexed by int8 IVF lists
    instead of ANNOY (shazamlet/library/ivf.py): ANNOY's float32 nodes would take over 1 GiB of
    memory at 10 000 songs; `nprobe` lists are scanned per query tile (bench R4).
    """

    library_hop_frames: int = 22
    # with a model that has a tile projection, each song also keeps the projections of the tiles halfway
    # between its indexed ones, for re-scoring only (shazamlet/library/between.py): evaluation mic3
    # 82 -> 84% for +10-17% indexing CPU and +35% fingerprint store (bench/between.py); the index is unchanged
    between_tiles: bool = True
    # each song also keeps its spectral peaks (shazamlet/landmarks.py) for the landmark check of the
    # re-scored candidates: evaluation mic3 84 -> 91%, babble3 59 -> 68% for ~130 bytes per second of
    # music on disk and ~4% more indexing CPU (bench/landmarks.py); the index is unchanged
    landmarks: bool = True
    query_hop_frames: int = 11
    n_trees: int = 16
    # neighbours per query tile that nominate songs: with 10, the right song is among the candidates of
    # 92 / 77% of the evaluation's mic3 / babble3 clips, with 30 of 96 / 87% (k = 20 or 50: the same
    # answers within a query or two); the peak checks then rank them (resources/report/notes.md)
    k: int = 30
    # ... and those of them that vote for the genre: the paper's k = 10 (30 voters pull a known song's
    # genre toward its look-alikes': -5.5 points on the evaluation)
    genre_k: int = 10
    search_k: int = 3000
    ivf_min_items: int = 1_000_000
    nprobe: int = 16

    def index_kind(self, n_items: int) -> str:
        """"annoy" (the paper's index) for libraries up to `ivf_min_items` tiles, "ivf" past that."""
        return "ivf" if n_items and n_items >= self.ivf_min_items else "annoy"  # an empty index stays ANNOY


@dataclass(frozen=True)
class MatchConfig:
    """Voting parameters. The acceptance threshold itself comes from the model file's calibration."""

    # Neighbours within this many frames of the winning alignment support it: one library hop, so
    # the library tiles on both sides of a query tile count.
    align_bin_frames: int = 22
    max_candidates: int = 5
    # The leading songs of the vote are re-scored over the whole query (matcher.rescore_aligned),
    # comparing each query tile with the library tiles within this many frames of its aligned place,
    # and checked for their peaks; 20, with the 30 neighbours nominating (IndexConfig.k)
    rescore_top: int = 20
    rescore_tolerance_frames: int = 22
    # A query tile with more than this many frames of silence (50 dB under the tile's peak) is not matched:
    # half silence, half the start of a sound matches the start of any library song that begins the same
    # way (the window heard from a stream as the music starts named a wrong song at 3.1 s; shazamlet/recognizer.py)
    max_quiet_frames: int = 10
    quiet_below_db: float = 50.0
    # The re-scored candidates' similarity is blended with their peaks' evidence where the library keeps
    # peaks (matcher.blended_similarity): 1 - (1 - similarity)(1 - wl e / (e + scale_l))(1 - wp p / (p + scale_p)),
    # e = landmarks found at one offset above chance (shazamlet/landmarks.py), p = the song's peaks loud in
    # the query at one offset, above `presence_floor` (shazamlet/presence.py), both in standard deviations.
    # Replaying the evaluation's queries on two draws, wl 0.3-0.9, wp 0.3-0.9, floor 3 and scale_p 2-4
    # gave babble3 73-76% and mic3 90-92% pooled (a plateau; resources/report/notes.md).
    landmark_weight: float = 0.5
    landmark_scale: float = 6.0
    presence_weight: float = 0.7
    presence_floor: float = 3.0
    presence_scale: float = 4.0
    # the songs whose peaks stand out most in the query, anywhere in the library (shazamlet.presence.presence_search),
    # join the candidates when the answer without them is not accepted: the 3 leading ones lifted the evaluation's
    # mic3 from 91 to 96% and babble3 from 76 to 81% (seed 0), the unknown songs rejected alike. A library of more than `presence_search_songs`
    # songs searches the songs nearest the query's fingerprints (that many neighbours per query tile), so that
    # an answer's cost stays bounded (bench/RESULTS.md); 0 turns the search off
    presence_search_top: int = 3
    presence_search_songs: int = 256
    # the landmarks are looked for within this many seconds of the place the fingerprints aligned the query to
    landmark_slack_s: float = 1.2
    # with this much evidence the landmarks' offset (23-ms frames) replaces the fingerprints' (~0.3 s)
    landmark_offset_evidence: float = 4.0
    # the leading candidates with less evidence than that at their alignment are searched song-wide, and
    # moved where the landmarks line up if fingerprints and peaks score higher there; chance reaches
    # ~3.5 standard deviations higher over a whole song than over the aligned window, which is taken off
    landmark_search_top: int = 3
    landmark_search_penalty: float = 3.5
    default_threshold: float = 0.5


@dataclass(frozen=True)
class LandmarkConfig:
    """Spectral peaks and their pairs for the landmark check (shazamlet/landmarks.py)."""

    sample_rate: int = 22_050
    n_fft: int = 1024
    hop: int = 512  # 23 ms frames
    min_hz: float = 150.0  # a laptop microphone keeps about 120 Hz - 7 kHz
    max_hz: float = 6_500.0
    peak_radius_bins: int = 3  # a peak is the largest value within this many bins ...
    peak_radius_frames: int = 3  # ... and frames
    peaks_per_second: int = 100  # at most, the strongest of each second
    fan_out: int = 5  # landmarks per anchor peak: the next peaks in time
    max_dt: int = 63  # frames between a landmark's two peaks (1.46 s)
    max_df: int = 31  # bins
    bin_step: int = 2  # the hash's resolution: a reverberant room moves peaks by a bin or a frame
    frame_step: int = 2
    silence_nats: float = 8.0  # bins more than ~70 dB under the loudest one hold no peaks

    @property
    def frame_seconds(self) -> float:
        return self.hop / self.sample_rate

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class AppConfig:
    features: FeatureConfig = field(default_factory=FeatureConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    match: MatchConfig = field(default_factory=MatchConfig)
