"""Encoder definition, model files and the tile embedder (no training code)."""

from shazamlet.model.checkpoint import LoadedModel, ModelError, ModelMeta, default_model_path, load_model, save_model
from shazamlet.model.embedder import TileEmbedder
from shazamlet.model.resnet import Encoder, GenreClassifier

__all__ = ["Encoder", "GenreClassifier", "LoadedModel", "ModelError", "ModelMeta", "TileEmbedder",
           "default_model_path", "load_model", "save_model"]
