"""Goal 3 - the paper's Table 1: exact k-NN against ANNOY on 80 000 random 1024-d vectors.

    python -m bench.table1 [--n 80000] [--dim 1024] [--queries 50]

Fit time, 30-NN and 1000-NN query time (one query vector at a time, as the app asks) for exact
search (scikit-learn brute force and ball tree, a numpy and a torch brute force) and ANNOY (angular,
the product's n_trees = 16); then ANNOY's recall@10 against exact search at search_k -1
(= n_trees * k), 1 000 (the product's) and 10 000. Random vectors in 1024 dimensions are the hardest
case for a tree index (every point is almost equally far from every other), so recall is also
given for near-duplicate queries (a library vector plus noise: what a query tile is to the tile of
the same moment in the library) and for the product's 64-d fingerprints.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from annoy import AnnoyIndex
from sklearn.neighbors import NearestNeighbors

from bench.common import OUT, Results, timed
from shazamlet.config import IndexConfig


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def exact_topk(data_t: torch.Tensor, q: np.ndarray, k: int) -> np.ndarray:
    sims = torch.from_numpy(q) @ data_t.T
    return torch.topk(sims, k, dim=1).indices.numpy()


def recall(approx: list[list[int]], exact: np.ndarray, k: int) -> float:
    return float(np.mean([len(set(a[:k]) & set(e[:k])) / k for a, e in zip(approx, exact)]))


def build_annoy(data: np.ndarray, n_trees: int, folder: Path) -> tuple[AnnoyIndex, float, float, int]:
    """(index, add seconds, build seconds, file bytes) - built on disk like the product."""
    ann = AnnoyIndex(data.shape[1], "angular")
    path = folder / f"t1-{data.shape[1]}.ann"
    ann.on_disk_build(str(path))
    t = time.process_time()
    for i, v in enumerate(data):
        ann.add_item(i, v)
    t_add = time.process_time() - t
    t = time.process_time()
    ann.build(n_trees, n_jobs=1)  # one thread: CPU time = time on an idle core (the product uses n_jobs=-1)
    t_build = time.process_time() - t
    return ann, t_add, t_build, path.stat().st_size


def recall_rows(ann: AnnoyIndex, data: np.ndarray, n_trees: int, rng: np.random.Generator, n_rec: int,
                search_ks: tuple[int, ...] = (-1, 1_000, 10_000)) -> list[list]:
    """ANNOY's recall@10 against exact search over `data` at each search_k, for random queries and for
    near-duplicate ones (a library vector plus noise, cos ~0.9: is that vector among the 10?)."""
    n, dim = data.shape
    random_q = unit(rng.standard_normal((n_rec, dim)))
    picks = rng.choice(n, n_rec, replace=False)
    near_q = unit(data[picks] + 0.5 * rng.standard_normal((n_rec, dim)).astype(np.float32) / np.sqrt(dim))
    data_t = torch.from_numpy(data)
    rows = []
    for label, qs, sources in (("random queries (the paper's setting)", random_q, None),
                               ("near-duplicate queries (library vector + noise, cos ~0.9)", near_q, picks)):
        exact = exact_topk(data_t, qs, 10)
        for sk in search_ks:
            t = time.process_time()
            approx = [ann.get_nns_by_vector(q, 10, search_k=sk) for q in qs]
            ms = (time.process_time() - t) / len(qs) * 1e3
            found = float(np.mean([p in a for p, a in zip(sources, approx)])) if sources is not None else float("nan")
            rows.append([f"{dim}-d", label, sk if sk > 0 else f"-1 (= {n_trees * 10})", recall(approx, exact, 10),
                         found, ms])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=80_000)
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--queries", type=int, default=50, help="query vectors per timing")
    ap.add_argument("--n-trees", type=int, default=16)
    ap.add_argument("--fp-dim", type=int, default=64, help="the product's fingerprint dimension")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # numpy / scikit-learn BLAS: one thread, so CPU time = time on an idle core
    res = Results("table1", "3. The paper's Table 1: exact k-NN against ANNOY")
    rng = np.random.default_rng(0)
    data = unit(rng.standard_normal((args.n, args.dim)))
    queries = unit(rng.standard_normal((args.queries, args.dim)))
    res.note(f"{args.n:,} random unit vectors of {args.dim} dimensions (Gaussian, normalised: cosine = angular); "
             f"query times are per single query vector, median over {args.queries} queries. All timings are "
             f"CPU seconds of one thread (= wall time on an idle core; the machine is shared).")
    rows = []

    def per_query(fn) -> float:
        """median CPU seconds per query of fn(q) over the query set (one warm-up, one thread)."""
        fn(queries[0])
        ts = []
        for q in queries:
            t = time.process_time()
            fn(q)
            ts.append(time.process_time() - t)
        return float(np.median(ts))

    # numpy brute force (the baseline: a matrix-vector product and a partial sort)
    def np_knn(q, k):
        s = data @ q
        idx = np.argpartition(-s, k)[:k]
        return idx[np.argsort(-s[idx])]

    base30 = per_query(lambda q: np_knn(q, 30))
    rows.append(["numpy brute force (baseline)", 0.0, base30 * 1e3, per_query(lambda q: np_knn(q, 1000)) * 1e3])
    data_t = torch.from_numpy(data)

    def torch_knn(q, k):
        return torch.topk(data_t @ torch.from_numpy(q), k).indices

    rows.append(["torch brute force", 0.0, per_query(lambda q: torch_knn(q, 30)) * 1e3,
                 per_query(lambda q: torch_knn(q, 1000)) * 1e3])
    for algo, metric in (("brute", "cosine"), ("ball_tree", "euclidean")):
        nn = NearestNeighbors(algorithm=algo, metric=metric)
        fit = timed(lambda: nn.fit(data), repeat=1, warmup=0)["cpu"]
        sub = queries[: max(5, args.queries // 5)] if algo == "ball_tree" else queries
        q30 = float(np.median([timed(lambda q=q: nn.kneighbors(q[None], 30), repeat=1, warmup=0)["cpu"]
                               for q in sub]))
        q1000 = float(np.median([timed(lambda q=q: nn.kneighbors(q[None], 1000), repeat=1, warmup=0)["cpu"]
                                 for q in sub]))
        rows.append([f"scikit-learn NearestNeighbors({algo}, {metric})", fit, q30 * 1e3, q1000 * 1e3])
    with tempfile.TemporaryDirectory(dir=OUT) as d:
        ann, t_add, t_build, size = build_annoy(data, args.n_trees, Path(d))
        a30 = per_query(lambda q: ann.get_nns_by_vector(q, 30))
        a1000 = per_query(lambda q: ann.get_nns_by_vector(q, 1000))
        rows.append([f"ANNOY angular, {args.n_trees} trees, search_k=-1", t_add + t_build, a30 * 1e3, a1000 * 1e3])
        rows = [r + [r[2] / (base30 * 1e3)] for r in rows]
        res.table(f"Table 1 reproduced: {args.n:,} x {args.dim}-d (fit = build the index; ANNOY: add "
                  f"{t_add:.1f} s + build {t_build:.1f} s, {size / 2**20:.0f} MiB on disk)",
                  ["method", "fit CPU s", "30-NN CPU ms/query", "1000-NN CPU ms/query",
                   "30-NN time / numpy brute force"], rows)

        n_rec = 200
        rrows = recall_rows(ann, data, args.n_trees, rng, n_rec)
        ann.unload()
        del ann
        # the product's fingerprints, same count
        data_fp = unit(rng.standard_normal((args.n, args.fp_dim)))
        ann_fp = build_annoy(data_fp, args.n_trees, Path(d))[0]
        rrows += recall_rows(ann_fp, data_fp, args.n_trees, rng, n_rec)
        ann_fp.unload()
    res.table(f"ANNOY recall@10 against exact search ({n_rec} queries, {args.n:,} vectors, {args.n_trees} trees; "
              f"the product uses search_k = {IndexConfig().search_k})", ["vectors", "queries", "search_k", "recall@10",
                                                   "source vector in the 10", "CPU ms/query"], rrows)
    res.value("rows", rows)
    res.value("recall_rows", rrows)
    res.save()


if __name__ == "__main__":
    main()
