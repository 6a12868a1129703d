"""Recognition in four stages, in the order the data flows: query (what is computed once per query),
nominate (which songs at which alignment are candidates), verify (what their spectral peaks say),
decide (margins, copies, the threshold, the genre, the `Answer`). `Recognizer` composes them."""

from shazamlet.recognition.config import (DecideConfig, NominateConfig, QueryConfig, RecognitionConfig,
                                          VerifyConfig)
from shazamlet.recognition.decide import Answer, Candidate, GenreVote, Trace
from shazamlet.recognition.recognizer import Recognizer, file_window_starts

__all__ = ["Answer", "Candidate", "DecideConfig", "GenreVote", "NominateConfig", "QueryConfig", "RecognitionConfig",
           "Recognizer", "Trace", "VerifyConfig", "file_window_starts"]
