"""Evaluation figures: genre confusion matrices and a t-SNE map of embeddings coloured by genre."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_png(records: list[dict], genres: list[str], path: Path, title: str) -> None:
    """Two panels (known songs, unknown songs), all conditions pooled; rows = truth, columns = answer."""
    plt = _plt()
    cols = genres + ["none"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    for ax, known in zip(axes, (True, False)):
        m = np.zeros((len(genres), len(cols)))
        for r in records:
            if r["known"] != known or r["true_genre"] not in genres:
                continue
            j = cols.index(r["genre"]) if r["genre"] in genres else len(genres)
            m[genres.index(r["true_genre"]), j] += 1
        rows = m / np.maximum(m.sum(1, keepdims=True), 1)
        ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
        for i in range(len(genres)):
            for j in range(len(cols)):
                if m[i, j]:
                    ax.text(j, i, f"{rows[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if rows[i, j] > 0.5 else "black")
        ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(genres)), genres, fontsize=8)
        acc = np.trace(m[:, : len(genres)]) / max(1, m.sum())
        ax.set_title(f"{'known' if known else 'unknown'} songs: genre acc {acc:.2f} (n={int(m.sum())})", fontsize=9)
        ax.set_xlabel("answer"), ax.set_ylabel("truth")
    fig.suptitle(f"{title}: genre votes, all conditions pooled")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def tsne_png(embedder, lib_songs, unknown, waves: dict, path: Path, per_song: int, title: str) -> None:
    """1024-d embeddings of `per_song` tiles of every song, t-SNE to 2-D; unknown songs as crosses."""
    from sklearn.manifold import TSNE

    plt = _plt()
    feats = embedder.features
    embs, genres, is_unknown = [], [], []
    for songs, unk in ((lib_songs, False), (unknown, True)):
        for s in songs:
            t = embedder.frontend.tiles(waves[s.rel], hop_frames=feats.tile_frames)
            keep = np.flatnonzero(t.audible)
            if len(keep) == 0:
                continue
            pick = keep[np.linspace(0, len(keep) - 1, min(per_song, len(keep))).astype(int)]
            embs.append(embedder.embeddings(t.tiles[pick]))
            genres += [s.genre] * len(pick)
            is_unknown += [unk] * len(pick)
    if sum(len(e) for e in embs) < 2:  # silent songs: no map to draw (the evaluation itself stands)
        print(f"no t-SNE map: {sum(len(e) for e in embs)} audible tiles", flush=True)
        return
    x = np.concatenate(embs)
    perplexity = float(min(30.0, max(1.0, (len(x) - 1) / 3)))
    xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=0).fit_transform(x)
    genres_arr, unk = np.array(genres), np.array(is_unknown)
    fig, ax = plt.subplots(figsize=(7, 6))
    for i, g in enumerate(sorted(set(genres))):
        c = plt.cm.tab10(i % 10)
        m = genres_arr == g
        ax.scatter(xy[m & ~unk, 0], xy[m & ~unk, 1], s=8, color=c, label=g, alpha=0.7)
        ax.scatter(xy[m & unk, 0], xy[m & unk, 1], s=16, color=c, marker="x", alpha=0.9)
    ax.legend(fontsize=8, markerscale=2)
    ax.set_title(f"{title}: t-SNE of tile embeddings (dots: library songs, x: unknown songs)", fontsize=9)
    ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
