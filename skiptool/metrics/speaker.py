"""Whose voice is it? Speaker identification of (generated) speech against enrolled real speakers.

Each utterance is an embedding (a speaker classifier's hidden layer, `SpeechClassifier.embed`);
each enrolled speaker is the mean of its real utterances' embeddings. An utterance is identified
as the speaker whose mean is nearest by cosine similarity (sklearn), and it is right when that is
the speaker it should have (for image->speech: its style reference's). Unlike the classifier's own
prediction, this works for speakers the classifier never saw, e.g. unseen test speakers: enrol them
with their real test speech. An utterance that is also an enrolment utterance is left out of its
own speaker's mean, so real test speech enrolled against itself is scored leave-one-out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
from sklearn.metrics.pairwise import cosine_similarity

from skiptool.metrics.inputs import check_hyp_keys
from skiptool.utils.errors import SkiptoolError


@dataclass(frozen=True)
class SpeakerIdResult:
    accuracy: float  # in [0, 1]
    num_utts: int
    num_correct: int
    num_speakers: int  # enrolled speakers: chance is 1 / num_speakers
    same_cosine: float  # mean cosine similarity to the speaker it should have
    other_cosine: float  # ... and to every other enrolled speaker

    def summary(self) -> dict[str, str]:
        return {"metric": "speaker-id", "Utts": str(self.num_utts), "Speakers": str(self.num_speakers),
                "Correct": str(self.num_correct), "Acc (%)": f"{100 * self.accuracy:.2f}",
                "cos same": f"{self.same_cosine:.3f}", "cos other": f"{self.other_cosine:.3f}"}


def speaker_identification(embeddings: Mapping[str, np.ndarray], speakers: Mapping[str, str],
                           enroll_embeddings: Mapping[str, np.ndarray], enroll_speakers: Mapping[str, str],
                           ref_name: str = "ref", hyp_name: str = "hyp") -> SpeakerIdResult:
    """Identify each utterance of `speakers` {key: the speaker it should have} by its embedding in
    `embeddings` among the speakers of `enroll_speakers` {key: speaker}, whose utterances'
    embeddings are in `enroll_embeddings`."""
    if not speakers:
        raise SkiptoolError(f"{ref_name}: no utterances to score")
    missing = check_hyp_keys(speakers, embeddings, hyp_name, ref_name)
    if missing:
        raise SkiptoolError(f"{hyp_name}: no utterance '{missing[0]}' of {ref_name} ({len(missing)} missing)")
    names = sorted(set(enroll_speakers.values()))
    if len(names) < 2:
        raise SkiptoolError(f"enrolment: {len(names)} speaker(s); identifying a voice needs at least 2")
    unknown = sorted(set(speakers.values()) - set(names))
    if unknown:
        raise SkiptoolError(f"{ref_name}: speaker '{unknown[0]}' is not enrolled; enrol real speech of every "
                            f"speaker that the scored utterances should have")
    absent = [key for key in enroll_speakers if key not in enroll_embeddings]
    if absent:
        raise SkiptoolError(f"enrolment: no features for '{absent[0]}' of its utt2spk")
    column = {name: i for i, name in enumerate(names)}
    sums = np.zeros((len(names), len(next(iter(enroll_embeddings.values())))))
    counts = np.zeros(len(names))
    for key, name in enroll_speakers.items():
        sums[column[name]] += enroll_embeddings[key]
        counts[column[name]] += 1
    keys = list(speakers)
    similarity = np.empty((len(keys), len(names)))
    for row, key in enumerate(keys):
        means = sums.copy()
        if key in enroll_speakers:  # leave the utterance out of its own speaker's mean
            own = column[enroll_speakers[key]]
            if counts[own] < 2:
                raise SkiptoolError(f"enrolment: speaker '{names[own]}' has only '{key}', the utterance being "
                                    f"scored; enrol at least 2 utterances per speaker")
            means[own] = (sums[own] - enroll_embeddings[key]) / (counts[own] - 1)
            others = np.arange(len(names)) != own
            means[others] /= counts[others, None]
        else:
            means /= counts[:, None]
        similarity[row] = cosine_similarity(embeddings[key][None, :], means)[0]
    target = np.array([column[speakers[key]] for key in keys])
    rows = np.arange(len(keys))
    correct = int((similarity.argmax(1) == target).sum())
    others = np.ones_like(similarity, dtype=bool)
    others[rows, target] = False
    return SpeakerIdResult(correct / len(keys), len(keys), correct, len(names),
                           float(similarity[rows, target].mean()), float(similarity[others].mean()))
