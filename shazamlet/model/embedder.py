"""Turn tiles into fingerprints with a loaded model: batched, no autograd, GPU when there is one, else
the file's ONNX graph on ONNX Runtime when it has one (`shazamlet.model.graph`), else PyTorch."""

from __future__ import annotations

import importlib.util
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch

from shazamlet.features import LogMelFrontEnd
from shazamlet.memory import release_freed_memory
from shazamlet.model.checkpoint import LoadedModel, ModelError, load_model
from shazamlet.model.graph import GraphEncoder, GraphError, fused_weights

# fingerprints of the graph and of PyTorch differ by ~3e-7 (float sums in another order); a graph that
# differs by more than this does not compute the file's encoder
GRAPH_TOLERANCE = 1e-4


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class TileEmbedder:
    """The front end and the encoder of one model file, ready to embed tiles."""

    def __init__(self, model: LoadedModel | str | None = None, batch_size: int = 128,
                 device: torch.device | None = None, graph: bool = True) -> None:
        """`graph`: on a CPU, run the file's graph when it has one. Preparing it costs ~0.3 s of CPU at
        start, which answers and tiles repay only in a process that makes many (listening, adding songs)."""
        self.device = device or pick_device()
        self.model = model if isinstance(model, LoadedModel) else load_model(model, self.device)
        self.model.encoder.to(self.device).eval()
        self.batch_size = batch_size
        self.features = self.model.meta.feature_config()
        self.frontend = LogMelFrontEnd(self.features)
        self._graph: Future[GraphEncoder] | None = None
        if graph and self.device.type == "cpu" and self.model.graph is not None and importlib.util.find_spec("onnxruntime"):
            # ONNX Runtime prepares its session (~0.15 s) beside the library's opening: it releases the GIL.
            # Half of torch's threads: `library add`'s decoder threads take the other half (`default_workers`);
            # on 2 cores one thread added 0.15 h of music in 2.6 s against 3.0 s with two (docs/decisions.md)
            pool = ThreadPoolExecutor(1, thread_name_prefix="graph")
            self._graph = pool.submit(self._load_graph, max(1, torch.get_num_threads() // 2))
            pool.shutdown(wait=False)

    def check_ready(self) -> None:
        """Wait for the graph's session; ModelError (one line) when the file's graph does not run its encoder."""
        self.graph

    @property
    def graph(self) -> GraphEncoder | None:
        """The file's graph, ready (ModelError if it does not compute the file's encoder); None: PyTorch runs it."""
        return None if self._graph is None else self._graph.result()

    def _load_graph(self, threads: int) -> GraphEncoder:
        """The file's graph on its own weights, checked on one tile against PyTorch: a graph exported
        from another encoder (other heads, band-centring) would give other fingerprints than its library's."""
        try:
            graph = GraphEncoder(*self.model.graph, fused_weights(self.model.encoder), threads)
            probe = torch.rand(1, self.features.n_mels, self.features.tile_frames, generator=torch.Generator().manual_seed(0))
            with torch.inference_mode():
                want = self.model.encoder.encode(probe)[0].numpy()
            got = graph.encode(probe.numpy())[0]
        except GraphError as exc:
            raise ModelError(f"{self.model.path}: {exc}") from None
        if got.shape != want.shape or not np.abs(got - want).max() <= GRAPH_TOLERANCE:
            raise ModelError(f"{self.model.path}: its encoder graph does not compute its encoder (exported from another one?)")
        release_freed_memory()  # the session's copies of the weights made on the way: ~85 MB
        return graph

    @property
    def dim(self) -> int:
        return self.model.encoder.output_dim

    @property
    def model_hash(self) -> str:
        """What a library records of the model that made its fingerprints (`checkpoint.fingerprints_sha256`)."""
        return self.model.fingerprints

    @property
    def genres(self) -> list[str]:
        """The labels of `encode`'s genre probabilities; empty when the model has neither a genre nor a style head."""
        enc = self.model.encoder
        return list(self.model.meta.genres) if enc.genre_head is not None or enc.style_head is not None else []

    def embed(self, tiles: torch.Tensor) -> np.ndarray:
        """Fingerprints `(n, dim)` float32, L2-normalised, for tiles `(n, n_mels, tile_frames)`."""
        return self.encode(tiles)[0]

    @torch.inference_mode()
    def encode(self, tiles: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
        """Fingerprints as `embed`, and each tile's genre probabilities `(n, len(genres))` (None when
        the model has no genre head), from one pass of the encoder."""
        n_genres = len(self.genres)
        fps, probs = [np.zeros((0, self.dim), np.float32)], [np.zeros((0, n_genres), np.float32)]
        for i in range(0, len(tiles), self.batch_size):
            batch = tiles[i : i + self.batch_size]
            if self.graph is not None:
                fp, pr = self.graph.encode(batch.numpy())
                fps.append(fp)
                probs.append(pr)
                continue
            fp, pr = self.model.encoder.encode(batch.to(self.device, torch.float32))
            fps.append(fp.float().cpu().numpy())
            if pr is not None:
                probs.append(pr.float().cpu().numpy())
        return np.concatenate(fps), (np.concatenate(probs) if n_genres else None)

    @property
    def tile_layout(self) -> tuple[int, float] | None:
        """(where the tile projection's part of a fingerprint starts, its weight), or None when the
        model has no tile projection. A fingerprint is `[model part * sqrt(1 - w), tile part * sqrt(w)]`,
        both parts unit-length (`Encoder.encode`)."""
        enc = self.model.encoder
        if enc.tile_projection is None:
            return None
        return enc.output_dim - enc.tile_dim, float(enc.tile_weight)

    @torch.inference_mode()
    def project(self, tiles: torch.Tensor) -> np.ndarray:
        """The tile projection alone `(n, tile_dim)`, unit-length (no weight), without the ResNet: about
        a sixth of a full pass (the residual's convolutions; the linear map is one matrix product).
        For the library's in-between tiles (`shazamlet.library.between`)."""
        proj = self.model.encoder.tile_projection
        if proj is None:
            raise ValueError("this model has no tile projection")
        out = [proj(tiles[i : i + self.batch_size].to(self.device, torch.float32)).float().cpu().numpy()
               for i in range(0, len(tiles), self.batch_size)]
        return np.concatenate(out) if out else np.zeros((0, self.model.encoder.tile_dim), np.float32)

    @torch.inference_mode()
    def embeddings(self, tiles: torch.Tensor) -> np.ndarray:
        """The raw 1024-d embeddings (for maps and analysis)."""
        out = [self.model.encoder(tiles[i : i + self.batch_size].to(self.device)).float().cpu().numpy()
               for i in range(0, len(tiles), self.batch_size)]
        return np.concatenate(out) if out else np.zeros((0, self.model.meta.embedding_dim), np.float32)
