"""The encoder as an ONNX graph, run by ONNX Runtime on a CPU: the same fingerprints for about half the CPU.

On this project's CPUs ONNX Runtime ran the encoder ~1.5-1.9x faster than PyTorch's eager mode, with
fingerprints equal to ~3e-7 (docs/decisions.md). The model file keeps the graph without its weights: its
initializers are references filled at load time from the file's own weights (each convolution's batch
norm folded into it, `fused_weights`), so the weights live in one place and a graph can never run weights
other than the file's. The graph is exported by the trainer (`export_graph`, which needs `onnx` and
`onnxscript`); the app needs only `onnxruntime`. A GPU, or a file without a graph, uses PyTorch.
"""

from __future__ import annotations

import copy
import logging
import warnings

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_conv_bn_weights

from shazamlet.model.resnet import BasicBlock, Encoder

# a constant the exporter folded that is not one of the weights; anything larger is a weight in disguise
MAX_EMBEDDED_BYTES = 1 << 16
WEIGHTS = "encoder weights"  # where the graph's stripped initializers say their data is


class GraphError(Exception):
    """A model file's graph that cannot run its weights."""


class _Encode(nn.Module):
    """`Encoder.encode` as a module's forward, so that it exports with both outputs."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, tiles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fp, probs = self.encoder.encode(tiles)
        return fp, (probs if probs is not None else fp[:, :0])


def _conv_bn_pairs(encoder: Encoder) -> list[tuple[str, str]]:
    """(a convolution, the batch norm after it) by module name: what `fused` folds."""
    pairs = [("trunk.stem.0", "trunk.stem.1")]
    for i, block in enumerate(encoder.trunk.layers):
        assert isinstance(block, BasicBlock)
        at = f"trunk.layers.{i}."
        pairs += [(at + "conv1", at + "bn1"), (at + "conv2", at + "bn2")]
        if block.down is not None:
            pairs.append((at + "down.0", at + "down.1"))
    return pairs


def fused(encoder: Encoder) -> _Encode:
    """A copy of the encoder with every batch norm folded into the convolution before it (inference only),
    as the module the graph is exported from."""
    enc = copy.deepcopy(encoder).float().cpu().eval()
    for conv, bn in _conv_bn_pairs(enc):
        parent, name = conv.rsplit(".", 1)
        bn_parent, bn_name = bn.rsplit(".", 1)
        setattr(enc.get_submodule(parent), name, fuse_conv_bn_eval(enc.get_submodule(conv), enc.get_submodule(bn)))
        setattr(enc.get_submodule(bn_parent), bn_name, nn.Identity())
    return _Encode(enc).eval()


def fused_weights(encoder: Encoder) -> dict[str, np.ndarray]:
    """`fused(encoder)`'s weights by initializer name, computed without copying the encoder (at every load)."""
    state = {k: v.detach().float().cpu() if v.is_floating_point() else v.detach().cpu()
             for k, v in encoder.state_dict().items()}
    with torch.no_grad():
        for conv, bn in _conv_bn_pairs(encoder):
            eps = encoder.get_submodule(bn).eps
            w, b = fuse_conv_bn_weights(state[conv + ".weight"], state.get(conv + ".bias"), state[bn + ".running_mean"],
                                        state[bn + ".running_var"], eps, state[bn + ".weight"], state[bn + ".bias"])
            state[conv + ".weight"], state[conv + ".bias"] = w.detach(), b.detach()
            for key in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
                state.pop(f"{bn}.{key}", None)
    return {"encoder." + k: np.ascontiguousarray(v.numpy()) for k, v in state.items()}


def export_graph(encoder: Encoder, tile_shape: tuple[int, int]) -> tuple[bytes, list[str]]:
    """The encoder's ONNX graph for tiles `(any, *tile_shape)` with its weights stripped, and the names of
    the weights it reads (trainer only: needs onnx and onnxscript)."""
    import onnx
    from onnx.external_data_helper import set_external_data

    module = fused(encoder)
    weights = set(module.state_dict())
    example = torch.zeros(2, *tile_shape)
    # the exporter logs a warning per torchvision op it would register: the encoder uses none
    registry_log = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registry_log.level
    registry_log.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(module, (example,), dynamic_shapes={"tiles": {0: torch.export.Dim("batch")}},
                                        input_names=["tiles"], output_names=["fingerprints", "probabilities"],
                                        dynamo=True, optimize=True, verbose=False)
        finally:
            registry_log.setLevel(level)
    model = program.model_proto
    stripped = []
    for init in model.graph.initializer:
        if init.name in weights:
            set_external_data(init, location=WEIGHTS)
            init.ClearField("raw_data")
            init.data_location = onnx.TensorProto.EXTERNAL
            stripped.append(init.name)
        elif init.ByteSize() > MAX_EMBEDDED_BYTES:
            raise GraphError(f"the exporter made a weight of its own ({init.name}): it would not follow the file's weights")
    return model.SerializeToString(), stripped


class GraphEncoder:
    """An ONNX Runtime session of one graph on the file's weights.

    ONNX Runtime copies the weights into the session (~130 MB in all with its optimised layouts), so the
    arrays handed in are not kept. Its threads do not spin while idle: spinning threads cost a 4-tile query
    half as much CPU again."""

    def __init__(self, graph: bytes, reads: list[str], weights: dict[str, np.ndarray], threads: int) -> None:
        import onnxruntime as ort

        missing = [n for n in reads if n not in weights]
        if missing:
            raise GraphError(f"its encoder graph reads weights the file does not have ({missing[0][:80]})")
        so = ort.SessionOptions()
        so.intra_op_num_threads = max(1, threads)
        so.inter_op_num_threads = 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.log_severity_level = 3
        so.add_external_initializers(list(reads), [ort.OrtValue.ortvalue_from_numpy(weights[n]) for n in reads])
        try:
            self.session = ort.InferenceSession(graph, so, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise GraphError(f"its encoder graph does not run ({str(exc).splitlines()[0][:160]})") from None

    def encode(self, tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(fingerprints, probabilities) of tiles `(n, n_mels, frames)`; `(n, 0)` probabilities without a head."""
        fp, probs = self.session.run(None, {"tiles": np.ascontiguousarray(tiles, np.float32)})
        return fp, probs
