"""The listening loop fed like a microphone: chunks of real audio at a device rate."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import LIB_HOP_SAMPLES

from shazamlet.audio.capture import RingBuffer
from shazamlet.audio.decode import resample
from shazamlet.library import Library
from shazamlet.listen import ListenEvent, Listener, ListenPolicy, StreamResampler
from shazamlet.recognition import Recognizer

DEVICE_RATE = 44_100


@pytest.fixture(scope="module")
def recognizer(tmp_path_factory, random_embedder, synth_music):
    lib = Library.open(tmp_path_factory.mktemp("lib"), random_embedder)
    lib.add([synth_music / "rock", synth_music / "chiptune"])
    return Recognizer(lib, random_embedder)


def feed(listener: Listener, audio: np.ndarray, chunk_s: float = 0.1):
    events = []
    step = int(chunk_s * DEVICE_RATE)
    for i in range(0, len(audio), step):
        ev = listener.push(audio[i : i + step])
        if ev:
            events.append(ev)
        if listener.done:
            break
    return events


def test_first_answer_after_3_s_and_final_when_sure(recognizer, synth_music):
    path = synth_music / "chiptune" / "chiptune_song_01.wav"
    wave, sr = sf.read(path, dtype="float32")
    audio = resample(wave[4 * LIB_HOP_SAMPLES :], sr, DEVICE_RATE)
    events = feed(Listener(recognizer, DEVICE_RATE), audio)
    assert events, "no answer at all"
    assert 3.0 <= events[0].heard_s < 4.5
    final = events[-1]
    assert final.kind == "final" and final.answer.song is not None
    assert final.answer.song.path == str(path)


def test_silence_ends_as_not_in_library_after_10_s(recognizer):
    listener = Listener(recognizer, DEVICE_RATE)
    events = feed(listener, np.zeros(12 * DEVICE_RATE, np.float32))
    assert events[-1].kind == "final" and events[-1].answer.song is None
    assert 9.9 <= events[-1].heard_s <= 11.5
    assert all(e.answer.silent for e in events)


def test_the_presence_search_reads_each_stretch_of_the_stream_once(recognizer, synth_music, monkeypatch):
    """Music not in the library keeps every answer unsure; the search (the costliest step, reading the
    window's newest ~3 s) runs again only once 3 s are new, where each answer searched before; the
    answers between check what it found."""
    import shazamlet.recognition.recognizer as stages

    wave, sr = sf.read(synth_music / "techno" / "techno_song_00.wav", dtype="float32")  # not in the library
    audio = resample(wave, sr, DEVICE_RATE)[: 11 * DEVICE_RATE]
    searched_at: list[float] = []
    joined: list[list] = []  # the nominees each unsure answer checked

    def spaced(listener: Listener) -> list[ListenEvent]:
        search, join = stages.search_by_presence, stages.join_presence_nominees

        def search_spy(*args, **kwargs):
            searched_at.append(listener.heard_s)
            return search(*args, **kwargs)

        def join_spy(query, nominees, found, *args, **kwargs):
            joined.append([(n.song_id, n.offset) for n in found])
            return join(query, nominees, found, *args, **kwargs)

        monkeypatch.setattr(stages, "search_by_presence", search_spy)
        monkeypatch.setattr(stages, "join_presence_nominees", join_spy)
        try:
            return feed(listener, audio)
        finally:
            monkeypatch.setattr(stages, "search_by_presence", search)
            monkeypatch.setattr(stages, "join_presence_nominees", join)

    every = spaced(Listener(recognizer, DEVICE_RATE, ListenPolicy(search_every_s=0.0)))
    each_answer = list(searched_at)
    searched_at.clear()
    joined.clear()
    events = spaced(Listener(recognizer, DEVICE_RATE))
    assert events[-1].kind == "final" and events[-1].answer.song is None
    assert len(each_answer) == len(every) >= 7  # every answer was unsure and searched
    assert len(searched_at) == 3 and np.allclose(np.diff(searched_at), 3.0, atol=0.11)
    assert len(joined) == len(events) and joined[0] and joined[1] == joined[0]  # found at 3.1 s, checked at 4.1 s
    assert [e.answer.song for e in events] == [e.answer.song for e in every]  # no song either way


def test_each_answer_embeds_only_new_tiles_and_equals_embedding_the_whole_window(recognizer, synth_music):
    path = synth_music / "rock" / "rock_song_01.wav"
    wave, sr = sf.read(path, dtype="float32")
    audio = resample(wave[LIB_HOP_SAMPLES // 3 :], sr, DEVICE_RATE)
    never_sure = ListenPolicy(sure_score=2.0, confirm_score=2.0)  # every step up to the 10-s window
    listener = Listener(recognizer, DEVICE_RATE, never_sure)
    threads = torch.get_num_threads()
    events = []
    for i in range(0, len(audio), DEVICE_RATE // 10):
        ev = listener.push(audio[i : i + DEVICE_RATE // 10])
        if ev:
            events.append(ev)
            full = recognizer.identify_wave(listener.window)  # embeds every tile of the same window
            got = ev.answer
            assert got.n_tiles == full.n_tiles
            np.testing.assert_allclose(got.fingerprints, full.fingerprints, atol=1e-5)
            assert [c.song_id for c in got.candidates] == [c.song_id for c in full.candidates]
            np.testing.assert_allclose([(c.offset_s, c.raw_score, c.similarity) for c in got.candidates],
                                       [(c.offset_s, c.raw_score, c.similarity) for c in full.candidates], atol=1e-4)
            assert (got.song is None) == (full.song is None)
        if listener.done:
            break
    assert torch.get_num_threads() == threads  # the listener's one thread was handed back
    assert len(events) >= 7 and events[-1].kind == "final" and events[-1].window_s > 9.4
    assert events[-1].answer.candidates and events[-1].answer.candidates[0].path == str(path)
    whole = sum(e.answer.n_tiles for e in events)  # what embedding every window again costs
    assert listener.fingerprints.served == whole
    assert listener.fingerprints.embedded <= events[-1].answer.n_tiles + 1  # every tile once
    assert listener.fingerprints.embedded < whole / 3


@pytest.mark.parametrize("rate", [44_100, 48_000, 16_000])
def test_stream_resampler_equals_resampling_the_whole_stream(rate):
    rng = np.random.default_rng(rate)
    x = rng.standard_normal(3 * rate).astype(np.float32)
    rs = StreamResampler(rate, 22_050)
    cuts = np.sort(rng.integers(0, len(x), 40))
    out = np.concatenate([rs.push(c) for c in np.split(x, cuts)])
    whole = resample(x, rate, 22_050)
    assert len(whole) - 2 * 22_050 * rs.margin // rate - 2 <= len(out) <= len(whole)
    np.testing.assert_allclose(out, whole[: len(out)], atol=1e-5)


def test_ring_buffer_keeps_the_newest_samples_and_positions():
    ring = RingBuffer(10)
    ring.write(np.arange(7, dtype=np.float32))
    ring.write(np.arange(7, 12, dtype=np.float32))
    assert ring.latest(4).tolist() == [8, 9, 10, 11]
    assert ring.latest(50).tolist() == list(range(2, 12))
    got, pos = ring.since(9)
    assert got.tolist() == [9, 10, 11] and pos == 12
    ring.write(np.arange(100, 125, dtype=np.float32))  # more than the capacity at once
    assert ring.latest(10).tolist() == list(range(115, 125)) and ring.written == 37
