"""The two trees `bench.realpath` compares, how to run code in each, and the libraries each answers from.

- *before*: a git revision, checked out once with `git worktree add --detach` into /tmp.
- *after*: the working tree, copied (tracked and untracked, not ignored, files of `shazamlet/`) into a
  folder named by its content hash. Others edit the working tree while a run takes half an hour; a
  copy is what makes every process of one run measure the same code, and names the code measured.

Each process runs with PYTHONPATH=<tree> and its working directory inside the tree (`python -m`
puts the working directory first on sys.path), the same venv, and SHAZAMLET_MODEL on one model file.

Libraries are built through the real CLI and cached. A library is reused by any tree whose code
writes the same library: each tree first builds a small probe library (two corpus tracks); the digest
of what it wrote (every file's bytes, the catalog's rows without its timestamps) names the cache
folder. Same digest, same format and contents: the after-tree may answer from a library the
before-tree built, and no refactor is trusted to have kept the format by its word.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
PYTHON = sys.executable
CACHE = Path(os.environ.get("SHAZAMLET_BENCH_CACHE", Path.home() / ".cache" / "shazamlet-bench")) / "realpath"
TMP = Path(tempfile.gettempdir())
PROBE_TRACKS = ("electronic/amoebax-data__AngusBackground.ogg", "electronic/amoebax-data__K.QuitaBackground.ogg")


@dataclass(frozen=True)
class Tree:
    name: str  # "before" or "after"
    root: Path
    ident: str  # commit sha, or "wt-" + content hash of the copied working tree
    label: str  # what the table calls it


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], check=True, capture_output=True, text=True).stdout.strip()


def before_tree(rev: str) -> Tree:
    """`rev` checked out (once) into /tmp/shazamlet-realpath-<sha12>."""
    sha = _git("rev-parse", f"{rev}^{{commit}}")
    root = TMP / f"shazamlet-realpath-{sha[:12]}"
    if not (root / "shazamlet").is_dir():
        shutil.rmtree(root, ignore_errors=True)
        _git("worktree", "prune")
        _git("worktree", "add", "--detach", str(root), sha)
    return Tree("before", root, sha, f"{rev} ({sha[:7]})")


def after_tree() -> Tree:
    """The working tree's `shazamlet/` as it is now, copied into /tmp/shazamlet-realpath-wt-<hash12>."""
    names = [n for n in _git("ls-files", "-co", "--exclude-standard", "-z", "--", "shazamlet", "pyproject.toml")
             .split("\0") if n and (REPO / n).is_file()]
    h = hashlib.sha256()
    for n in sorted(names):
        h.update(n.encode() + b"\0" + (REPO / n).read_bytes())
    ident = "wt-" + h.hexdigest()[:12]
    root = TMP / f"shazamlet-realpath-{ident}"
    if not (root / ".complete").exists():
        for old in TMP.glob("shazamlet-realpath-wt-*"):  # our earlier copies, unless a run may still use them
            if time.time() - max(old.stat().st_mtime, (old / ".complete").stat().st_mtime
                                 if (old / ".complete").exists() else 0) > 12 * 3600:
                shutil.rmtree(old, ignore_errors=True)
        for n in names:
            (root / n).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / n, root / n)
        (root / ".complete").write_text(_git("rev-parse", "HEAD") + "\n")
    dirty = len([line for line in _git("status", "--porcelain", "--", "shazamlet").splitlines() if line])
    head = _git("rev-parse", "--short", "HEAD")
    return Tree("after", root, ident, f"working tree ({head} + {dirty} changed files, {ident})")


def model_file(before: Tree, after: Tree) -> Path:
    """One model file for both trees: the after-tree's bundled model (else the before-tree's)."""
    for p in (after.root / "shazamlet/model/shazamlet-default.pt", before.root / "shazamlet/model/shazamlet-default.pt",
              before.root / "resources/shazamlet-default.pt"):
        if p.exists():
            return p
    raise FileNotFoundError("no shazamlet-default.pt in either tree")


def env(tree: Tree, model: Path, extra: dict | None = None) -> dict:
    return {**os.environ, "PYTHONPATH": str(tree.root), "SHAZAMLET_MODEL": str(model), "PYTHONHASHSEED": "0",
            **(extra or {})}


@dataclass
class Ran:
    wall_s: float
    cpu_s: float  # user + system of the child process (all its threads)
    out: str


def run_cli(tree: Tree, model: Path, args: list[str], check: bool = True, quiet: bool = True) -> Ran:
    """`python -m shazamlet ARGS` in `tree`: wall clock and the child's CPU time (rusage)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run([PYTHON, "-m", "shazamlet", *args], cwd=tree.root, env=env(tree, model), text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE if quiet else None)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if check and p.returncode != 0:
        raise RuntimeError(f"{tree.name}: shazamlet {' '.join(args[:4])}... exit {p.returncode}: {(p.stderr or '')[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Ran(wall, cpu, p.stdout)


def run_python(pythonpath: Path, script: str, job: dict, model: Path | None = None, timeout: float = 3600,
               show: bool = False) -> dict:
    """`python -P bench/<script> JOB OUT` with PYTHONPATH=`pythonpath`; the JSON it wrote (`show`: its
    progress bars reach the terminal)."""
    with tempfile.TemporaryDirectory(prefix="realpath-job-") as tmp:
        jf, of = Path(tmp) / "job.json", Path(tmp) / "out.json"
        jf.write_text(json.dumps(job))
        extra = {"PYTHONPATH": str(pythonpath)}
        if model is not None:
            extra["SHAZAMLET_MODEL"] = str(model)
        p = subprocess.run([PYTHON, "-P", str(BENCH / script), str(jf), str(of)], cwd=pythonpath,
                           env={**os.environ, **extra}, stdout=subprocess.PIPE, stderr=None if show else subprocess.PIPE, text=True,
                           timeout=timeout)
        if p.returncode != 0 or (script == "realpath_worker.py" and not of.exists()):
            raise RuntimeError(f"{script} {job.get('kind')} in {pythonpath}: exit {p.returncode}\n{(p.stderr or '')[-3000:]}")
        return json.loads(of.read_text()) if of.exists() else {}


def run_worker(tree: Tree, model: Path, job: dict) -> dict:
    out = run_python(tree.root, "realpath_worker.py", job, model)
    if not out.get("shazamlet", "").startswith(str(tree.root)):
        raise RuntimeError(f"{tree.name}: the worker imported shazamlet from {out.get('shazamlet')}, not {tree.root}")
    return out


# -- libraries ------------------------------------------------------------------------------------
def link_tree(files: list[tuple[Path, Path]], folder: Path) -> Path:
    """A music folder of hard links (same bytes, no copy; a copy where links are impossible)."""
    if (folder / ".complete").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    for src, rel in files:
        dst = folder / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
    (folder / ".complete").write_text("")
    return folder


def _recent(v: object, now: float) -> bool:
    return isinstance(v, float) and abs(v - now) < 30 * 86400  # a timestamp written while building


def library_digest(folder: Path) -> str:
    """What a library holds, without when it was written: file bytes, catalog rows minus timestamps."""
    h, now = hashlib.sha256(), time.time()
    for f in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        rel = f.relative_to(folder).as_posix()
        if f.suffix in (".sqlite", ".db") or f.name.endswith(".sqlite"):
            db = sqlite3.connect(f"file:{f}?mode=ro", uri=True)
            for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"):
                cols = [c[1] for c in db.execute(f"PRAGMA table_info('{table}')")]
                for row in db.execute(f"SELECT * FROM '{table}' ORDER BY 1"):
                    keep = [v for c, v in zip(cols, row) if c not in ("added", "created") and not _recent(v, now)]
                    if table == "meta" and row[0] == "created":
                        continue
                    h.update(repr((table, keep)).encode())
            db.close()
        elif not f.name.endswith(("-journal", "-wal", "-shm", ".lock")):
            h.update(rel.encode() + b"\0" + hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def probe_digest(tree: Tree, model: Path) -> str:
    """The digest of the probe library this tree's `library add` writes (cached per tree)."""
    cached = CACHE / "probes" / f"{tree.ident}.json"
    if cached.exists():
        return json.loads(cached.read_text())["digest"]
    music = link_tree([(Path("/work/corpus") / t, Path("probe") / Path(t).name) for t in PROBE_TRACKS],
                      CACHE / "music" / "probe")
    with tempfile.TemporaryDirectory(prefix="realpath-probe-") as tmp:
        lib = Path(tmp) / "lib"
        run_cli(tree, model, ["--library", str(lib), "library", "add", "-q", str(music)])
        digest = library_digest(lib)
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps({"digest": digest, "tree": str(tree.root), "model": str(model)}))
    return digest


def library(tree: Tree, model: Path, name: str, music: Path) -> Path:
    """The library of `music` that `tree` answers from: cached by the probe digest, else built by its CLI."""
    folder = CACHE / "libs" / f"{name}-{probe_digest(tree, model)[:12]}"
    if (folder / ".complete.json").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    print(f"building library {name} with the {tree.name} tree ({tree.label}) into {folder}", flush=True)
    ran = run_cli(tree, model, ["--library", str(folder), "library", "add", str(music)], quiet=False)
    (folder / ".complete.json").write_text(json.dumps({"tree": tree.label, "wall_s": ran.wall_s, "cpu_s": ran.cpu_s,
                                                      "out": ran.out}))
    return folder
