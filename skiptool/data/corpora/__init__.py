"""Corpus preparers, one module per corpus, each a `prepare_<corpus>(...)` writing Kaldi data dirs
and returning {"train": DataDir, "test": DataDir, ...}. The registry maps a corpus name (as used
by `skiptool prep NAME`) to its preparer."""

from skiptool.data.corpora.audiomnist import prepare_audiomnist
from skiptool.data.corpora.coco import prepare_coco
from skiptool.data.corpora.emt4 import prepare_emt4
from skiptool.data.corpora.espeak_digits import prepare_espeak_digits
from skiptool.data.corpora.espeak_sentences import prepare_espeak_sentences
from skiptool.data.corpora.fsdd import prepare_fsdd
from skiptool.data.corpora.ljspeech import prepare_ljspeech
from skiptool.data.corpora.mnist import prepare_mnist
from skiptool.data.corpora.shapes import prepare_shapes
from skiptool.data.corpora.sklearn_digits import prepare_sklearn_digits
from skiptool.data.corpora.speech_commands import prepare_speech_commands
from skiptool.data.corpora.tidigits import prepare_tidigits

PREPARERS = {
    # spoken digits
    "fsdd": prepare_fsdd,
    "tidigits": prepare_tidigits,
    "audiomnist": prepare_audiomnist,
    "speech-commands": prepare_speech_commands,
    "espeak-digits": prepare_espeak_digits,  # built in: synthesised with espeak-ng
    # written digits
    "mnist": prepare_mnist,
    "sklearn-digits": prepare_sklearn_digits,  # built in: scikit-learn's 8x8 digits upscaled to 28x28
    # image-text (captions)
    "coco": prepare_coco,
    "shapes": prepare_shapes,  # built in: drawn scenes with five captions each
    # text-speech
    "ljspeech": prepare_ljspeech,
    "emt4": prepare_emt4,  # an EMT-4-style list: wav, text, emotion
    "espeak-sentences": prepare_espeak_sentences,  # built in: one espeak-ng voice in four emotion styles
}
