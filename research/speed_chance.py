"""What chance gains from trying several playback speeds in the verify stage, and what the right song does.

For every replayed query (`replay.py`'s library, plan and conditions), the leading candidates by fingerprints
(those verify tries speeds for) are checked at 1x and at each speed of `VerifyConfig.speeds`; the evidence is
kept per candidate. Wrong candidates (every candidate of an unknown clip, the others of a known one) show
how often chance passes decide's evidence bars at 1x and at the best speed less a penalty; the right song of
speed3 clips shows what the penalty costs.

    python research/speed_chance.py run --out /tmp/replay/chance.json
    python research/speed_chance.py show /tmp/replay/chance.json

Research tool: not part of the product.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from replay import add_run_args, queries, setup


def run(args: argparse.Namespace) -> None:
    from shazamlet.landmarks import aligned_evidence
    from shazamlet.presence import presence
    from shazamlet.recognition.nominate import nominate
    from shazamlet.recognition.speed import speed_evidence

    tree, lib, rec, rate, plan, rirs, babble, load_audio = setup(args)
    cfg, lc = rec.cfg, lib.landmark_config
    slack = cfg.verify.landmark_slack_s / lc.frame_seconds
    rows = []
    for cond, i, path, is_known, q, speed, start in queries(args, rate, plan, rirs, babble, load_audio):
        query = rec.encode(q)
        if query.silent:
            continue
        nominees = nominate(query, lib, cfg.nominate)
        hypotheses = [query.at_speed(s, True) for s in cfg.verify.speeds]
        for rank, vote in enumerate(nominees.votes[: cfg.verify.speed_search_top]):
            song = lib.song(vote.song_id)
            packed = lib.song_peaks(vote.song_id)
            if packed is None:
                continue
            at = vote.offset_frames * query.landmark_frames_per_frame
            one = aligned_evidence(query.landmarks, packed, at, slack, lc)
            right = is_known and song.path == str(path)
            heard = presence(query.presence_map, packed, at, slack).score
            rows.append({"cond": cond, "i": i, "rank": rank, "speed": speed, "right": right, "start_frame": start / lc.hop,
                         "at_1x": [one.excess, heard],
                         "speeds": [[e.speed, e.landmarks, e.presence, e.offset]
                                    for e in speed_evidence(hypotheses, packed, at, slack, lc)]})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"tree": str(tree), "rows": rows}))
    show(args.out)


def show(path: Path, bar_l: float = 4.0, bar_p: float = 3.5) -> None:
    """Per penalty: the share of wrong candidates passing decide's bars (landmarks >= 4 or presence >= 3.5)
    at 1x and, where 1x does not, at the best speed less the penalty; the same for the right song of speed3."""
    rows = json.loads(path.read_text())["rows"]
    wrong = [r for r in rows if not r["right"]]
    right = [r for r in rows if r["right"] and r["cond"] == "speed3"]
    print(f"{len(wrong)} wrong candidates, {len(right)} right ones of speed3 clips")

    def passes(le: float, pe: float) -> bool:
        return le >= bar_l or pe >= bar_p

    for name, rs in (("wrong", wrong), ("right speed3", right)):
        one = np.array([passes(*r["at_1x"]) for r in rs])
        print(f"  {name}: pass at 1x {one.mean():.2%}")
        for k, what in ((0, "landmarks"), (1, "presence")):  # what the best of the speeds gains on 1x, by chance
            at_1x = np.array([r["at_1x"][k] for r in rs])
            best = np.array([max(e[k + 1] for e in r["speeds"]) for r in rs])
            q = [50, 90, 99]
            print(f"    {what} percentiles {q}: 1x {np.percentile(at_1x, q).round(2)}  best speed {np.percentile(best, q).round(2)}")
    for lp, pp in [(0, 0), (0.5, 0.5), (1.0, 0.5), (1.0, 1.0), (1.5, 1.0), (1.5, 1.5), (2.0, 1.0), (2.0, 1.5),
                   (2.0, 2.0), (3.0, 2.0)]:
        out = []
        for rs in (wrong, right):
            one = np.array([passes(*r["at_1x"]) for r in rs])
            weak = ~one
            fast = np.array([any(passes(le - lp, pe - pp) for _, le, pe, _ in r["speeds"]) for r in rs])
            out.append(f"{np.mean(weak & fast):6.2%}")
        print(f"  penalty landmarks {lp} presence {pp}: passes only at a speed: wrong {out[0]}  right speed3 {out[1]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    add_run_args(sub.add_parser("run"))
    s = sub.add_parser("show")
    s.add_argument("path", type=Path)
    args = ap.parse_args()
    run(args) if args.cmd == "run" else show(args.path)


if __name__ == "__main__":
    main()
