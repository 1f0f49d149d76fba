"""A small CTC speech recogniser over FBank (or mel) frames, independent of every generative model:
the recipes train it on real speech of the text-speech corpus and transcribe generated speech
with it (`skiptool score --hyp-wav WAV_SCP --recognizer ctc --asr-exp EXP`).

    frames (B, T, D) -> per-utterance CMVN -> SpecAugment (training only)
      -> 2 x [conv 3x3, ReLU] (frequency stride 2 each, time stride `time_stride` in all)
      -> linear -> `rnn_layers` bidirectional GRU/LSTM -> linear -> log-probs over the 66 characters

Targets are the characters of skiptool/text/symbols.py (the paper's 66-symbol table) after the
`cleaner`; <pad> (id 0) is the CTC blank. Decoding is greedy (best path: argmax per frame, repeats
merged, blanks dropped), or, given a vocabulary, a beam search that only spells words of it
(`LexiconDecoder`: torchaudio's `ctc_decoder`, flashlight-text's lexicon decoder, no language
model). With 300 training sentences most greedy word errors are near-misses of a known word
(doubled letters merged: book -> bok; unusual spellings: carried -> caired); the lexicon turns
them back into words, as the vocabulary of a Kaldi or ESPnet decoding graph would.

Choices made here (no paper fixes this model; it only needs to be accurate):
- time stride 2 (20 ms per output frame), not ESPnet's 4: espeak-ng speaks about 23 characters per
  second, more than the 25 outputs/s of a 40 ms stride leave room for once repeated letters need a
  blank between them.
- each utterance is normalised over its own frames (as the digit classifiers do), so the training
  features need no CMVN stats and Griffin-Lim audio with another level is judged by its shape.
- the loss is the CTC loss summed over an utterance, averaged over the batch; utterances whose
  text cannot fit their frames contribute zero (`zero_infinity`) and are counted in `infeasible`.
- `feats` records the training features' conf.yaml, filled in by the dataset hook, so that the
  exp dir alone says how to compute the recogniser's input from a waveform.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import torch
import torch.nn.functional as F
import torchaudio
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence
from torch.utils.data import Dataset

from skiptool.data.datasets import FeatsDataset, collate, data_dir
from skiptool.text.symbols import PAD_ID, SPACE, SYMBOLS, token_name
from skiptool.text.tokenizer import CharTokenizer
from skiptool.utils.errors import SkiptoolError

# conf.yaml keys of a feature dir that describe how it was made, not how to extract features
FEATS_PROVENANCE = ("type", "feat_dim", "cmvn", "cmvn_norm_vars", "cmvn_stats")


@dataclass
class CTCASRConfig:
    speech_dim: int = 80  # FBank bins (or mel bins) of the input features
    vocab_size: int = len(SYMBOLS)  # the 66-symbol table; blank = <pad>
    blank_id: int = PAD_ID
    cleaner: str = "english"  # text cleaner run on the transcripts before they become targets
    conv_channels: int = 32
    time_stride: int = 2  # total time subsampling of the two convolutions: 1, 2 or 4
    rnn_type: Literal["gru", "lstm"] = "gru"
    rnn_dim: int = 128  # per direction
    rnn_layers: int = 2
    dropout: float = 0.2
    utterance_cmvn: bool = True
    # SpecAugment (Park et al. 2019) without time warping, training only; 0 masks = off
    freq_masks: int = 2
    freq_mask_width: int = 10  # bins, at most
    time_masks: int = 2
    time_mask_width: int = 20  # frames, at most (and at most a fifth of the utterance)
    feats: dict[str, Any] | None = None  # the training features' conf.yaml (set from --data when null)

    def __post_init__(self) -> None:
        if min(self.speech_dim, self.vocab_size, self.conv_channels, self.rnn_dim, self.rnn_layers) < 1:
            raise ValueError("speech_dim, vocab_size, conv_channels, rnn_dim and rnn_layers must be positive")
        if self.time_stride not in (1, 2, 4):
            raise ValueError(f"time_stride must be 1, 2 or 4, got {self.time_stride}")
        if not 0 <= self.blank_id < self.vocab_size:
            raise ValueError(f"blank_id {self.blank_id} is outside 0..{self.vocab_size - 1}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if min(self.freq_masks, self.freq_mask_width, self.time_masks, self.time_mask_width) < 0:
            raise ValueError("SpecAugment mask counts and widths must be >= 0")


def utterance_normalize(x: Tensor, lengths: Tensor, eps: float = 1e-5) -> Tensor:
    """Zero mean, unit variance per utterance and dimension over its valid frames; padding -> 0.
    x: (B, T, D)."""
    mask = (torch.arange(x.size(1), device=x.device)[None, :] < lengths[:, None]).unsqueeze(-1)
    frames = lengths.clamp(min=1).to(x.dtype)[:, None, None]
    mean = (x * mask).sum(1, keepdim=True) / frames
    var = (((x - mean) * mask) ** 2).sum(1, keepdim=True) / frames
    return ((x - mean) / torch.sqrt(var + eps)) * mask


def spec_augment(x: Tensor, lengths: Tensor, cfg: CTCASRConfig) -> Tensor:
    """Frequency and time masks (set to 0, the normalised mean) per utterance; torch's global RNG."""
    x = x.clone()
    for b, length in enumerate(lengths.tolist()):
        for _ in range(cfg.freq_masks):
            width = int(torch.randint(0, cfg.freq_mask_width + 1, ()))
            start = int(torch.randint(0, max(1, x.size(2) - width), ()))
            x[b, :, start:start + width] = 0
        max_width = min(cfg.time_mask_width, length // 5)
        for _ in range(cfg.time_masks if max_width > 0 else 0):
            width = int(torch.randint(0, max_width + 1, ()))
            start = int(torch.randint(0, max(1, length - width), ()))
            x[b, start:start + width] = 0
    return x


def greedy_decode(log_probs: Tensor, lengths: Tensor, blank_id: int = PAD_ID) -> list[list[int]]:
    """Best-path CTC decoding: the argmax of every frame, repeats merged, blanks removed.
    log_probs: (B, T, V); lengths: (B,) valid frames."""
    best = log_probs.argmax(-1)
    out = []
    for path, length in zip(best, lengths.tolist()):
        merged = torch.unique_consecutive(path[:length])
        out.append([int(i) for i in merged if int(i) != blank_id])
    return out


class LexiconDecoder:
    """CTC beam search over the 66-symbol table that spells only words of `words` (no language model):
    `decoder(log_probs (B, T, V), lengths (B,)) -> [text, ...]`, the words joined by spaces.

    Each word must be in the model's cleaned spelling (`CharTokenizer.clean`); words with a
    character outside the table cannot be spelt and are left out. Word boundaries are the space
    symbol, the blank is <pad>."""

    def __init__(self, words: Sequence[str], beam_size: int = 50):
        import tempfile

        try:
            from torchaudio.models.decoder import ctc_decoder
        except (ImportError, RuntimeError) as error:  # torchaudio raises RuntimeError without flashlight-text
            raise SkiptoolError(f"lexicon decoding needs the flashlight-text package ({error}); "
                                f"run `make install`") from None
        known = set(SYMBOLS)
        vocabulary = sorted({w for w in words if w and all(c in known and c != " " for c in w)})
        if not vocabulary:
            raise SkiptoolError("the lexicon has no word the recogniser can spell (66-symbol table)")
        self.words = vocabulary
        tokens = [token_name(s) for s in SYMBOLS]
        with tempfile.NamedTemporaryFile("w", suffix=".lexicon", encoding="utf-8") as lexicon:
            for word in vocabulary:  # flashlight's lexicon: word, then its tokens ending in the word separator
                lexicon.write(f"{word} {' '.join(token_name(c) for c in word)} {SPACE}\n")
            lexicon.flush()
            self._decode = ctc_decoder(lexicon=lexicon.name, tokens=tokens, lm=None, beam_size=beam_size,
                                       blank_token=token_name(SYMBOLS[PAD_ID]), sil_token=SPACE,
                                       unk_word="<unk>")

    def __call__(self, log_probs: Tensor, lengths: Tensor) -> list[str]:
        hyps = self._decode(log_probs.detach().float().cpu().contiguous(), lengths.cpu().int())
        return [" ".join(best[0].words) if best else "" for best in hyps]


def conv_output_length(lengths: Tensor, stride: int) -> Tensor:
    """Frames after a kernel-3, padding-1 convolution of `stride`: ceil(T / stride)."""
    return torch.div(lengths + stride - 1, stride, rounding_mode="floor")


class CTCASR(nn.Module):
    def __init__(self, cfg: CTCASRConfig):
        super().__init__()
        self.cfg = cfg
        self.strides = {1: (1, 1), 2: (2, 1), 4: (2, 2)}[cfg.time_stride]
        c = cfg.conv_channels
        self.conv1 = nn.Conv2d(1, c, 3, stride=(self.strides[0], 2), padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, stride=(self.strides[1], 2), padding=1)
        freq = (cfg.speech_dim + 1) // 2
        freq = (freq + 1) // 2
        self.proj = nn.Linear(c * freq, cfg.rnn_dim)
        rnn = nn.GRU if cfg.rnn_type == "gru" else nn.LSTM
        self.rnn = rnn(cfg.rnn_dim, cfg.rnn_dim, num_layers=cfg.rnn_layers, batch_first=True, bidirectional=True,
                       dropout=cfg.dropout if cfg.rnn_layers > 1 else 0.0)
        self.dropout = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(2 * cfg.rnn_dim, cfg.vocab_size)
        self.ctc = nn.CTCLoss(blank=cfg.blank_id, reduction="none", zero_infinity=True)

    def encode(self, speech: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Log-probabilities (B, T', vocab_size) over characters and their valid lengths (B,)."""
        if speech.dim() != 3 or speech.size(-1) != self.cfg.speech_dim:
            raise SkiptoolError(f"speech: expected (batch, frames, {self.cfg.speech_dim}) features, got "
                                f"{tuple(speech.shape)}; set model_conf.speech_dim to the feature dimension")
        x = utterance_normalize(speech, lengths) if self.cfg.utterance_cmvn else speech
        if self.training and (self.cfg.freq_masks or self.cfg.time_masks):
            x = spec_augment(x, lengths, self.cfg)
        # frames past an utterance's end are zeroed before each convolution, so that a batch's
        # padding never changes an utterance's output (the convolutions' bias makes them non-zero)
        x = F.relu(self.conv1(x.unsqueeze(1)))
        lengths = conv_output_length(lengths, self.strides[0])
        x = x * (torch.arange(x.size(2), device=x.device)[None, :] < lengths[:, None])[:, None, :, None]
        x = F.relu(self.conv2(x))  # (B, C, T', F')
        lengths = conv_output_length(lengths, self.strides[1])
        x = self.dropout(self.proj(x.permute(0, 2, 1, 3).flatten(2)))
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        x, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=x.size(1))
        return self.out(self.dropout(x)).log_softmax(-1), lengths

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        missing = [k for k in ("speech", "speech_lengths", "text", "text_lengths") if k not in batch]
        if missing:
            raise SkiptoolError(f"batch: no {', '.join(missing)}; ctc_asr trains on speech features with "
                                f"their transcripts (the feature dir's text)")
        log_probs, lengths = self.encode(batch["speech"], batch["speech_lengths"])
        targets, target_lengths = batch["text"], batch["text_lengths"]
        per_utt = self.ctc(log_probs.transpose(0, 1), targets, lengths, target_lengths)
        loss = per_utt.mean()
        hyps = greedy_decode(log_probs.detach(), lengths, self.cfg.blank_id)
        refs = [t[:n].tolist() for t, n in zip(targets, target_lengths.tolist())]
        errors = sum(torchaudio.functional.edit_distance(r, h) for r, h in zip(refs, hyps))
        stats = {"loss": loss.item(), "cer": errors / max(1, int(target_lengths.sum())),
                 "infeasible": float((per_utt == 0).float().mean())}
        return loss, stats

    @torch.no_grad()
    def recognize(self, speech: Tensor, lengths: Tensor) -> list[list[int]]:
        """Greedy character ids of each utterance of a padded batch."""
        log_probs, out_lengths = self.encode(speech, lengths)
        return greedy_decode(log_probs, out_lengths, self.cfg.blank_id)


def transcribe_features(model: CTCASR, feats: Sequence[Tensor], batch_size: int = 32,
                        device: torch.device | str = "cpu", lexicon: LexiconDecoder | None = None) -> list[str]:
    """Text of each (T, D) feature matrix, in order; batches of similar lengths to limit padding.
    Greedy decoding, or `lexicon`'s beam search when given."""
    model = model.to(device).eval()
    tokenizer = CharTokenizer(model.cfg.cleaner)
    order = sorted(range(len(feats)), key=lambda i: feats[i].shape[0])
    texts: list[str] = [""] * len(feats)
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        batch = collate([{"speech": torch.as_tensor(feats[i])} for i in index])
        speech, lengths = batch["speech"].to(device), batch["speech_lengths"].to(device)
        if lexicon is None:
            hyps = [tokenizer.decode(ids) for ids in model.recognize(speech, lengths)]
        else:
            with torch.no_grad():
                hyps = lexicon(*model.encode(speech, lengths))
        for i, hyp in zip(index, hyps):
            texts[i] = hyp
    return texts


# ------------------------------------------------------------------------- registry hooks


class TranscribedSpeech(Dataset):
    """Speech features with their transcripts as character ids: items {key, speech (T, D), text (L,)}."""

    def __init__(self, feats_dir: Path, cleaner: str):
        from skiptool.data.datadir import read_table

        self.speech = FeatsDataset(feats_dir, labels=False)
        text_path = Path(feats_dir) / "text"
        if not text_path.is_file():
            raise SkiptoolError(f"{text_path}: not found; ctc_asr needs the transcripts (skiptool feats copies "
                                f"the data dir's text into the feature dir)")
        table = read_table(text_path)
        tokenizer = CharTokenizer(cleaner)
        self.targets = []
        for key in self.speech.keys:
            if key not in table:
                raise SkiptoolError(f"{text_path}: no transcript for '{key}' of feats.scp; run `skiptool data fix`")
            ids = tokenizer.encode(table[key])
            if not ids:
                raise SkiptoolError(f"{text_path}: the transcript of '{key}' is empty after cleaning; "
                                    f"remove the utterance")
            self.targets.append(torch.tensor(ids, dtype=torch.long))
        self.keys = self.speech.keys

    def __len__(self) -> int:
        return len(self.speech)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {**self.speech[index], "text": self.targets[index]}


def collate_ctc(items: Sequence[Mapping[str, Any]]) -> dict[str, Tensor]:
    """`collate` for the speech, plus `text` padded with <pad> and `text_lengths`."""
    batch = collate([{k: v for k, v in item.items() if k != "text"} for item in items])
    texts = [item["text"] for item in items]
    batch["text"] = pad_sequence(texts, batch_first=True, padding_value=PAD_ID)
    batch["text_lengths"] = torch.tensor([len(t) for t in texts], dtype=torch.long)
    return batch


def feats_conf_of(feats_dir: Path) -> dict[str, Any]:
    """The feature dir's conf.yaml as a plain dict; an error when the recogniser could not redo it."""
    from skiptool.utils.config import read_yaml

    path = Path(feats_dir) / "conf.yaml"
    if not path.is_file():
        raise SkiptoolError(f"{path}: not found; make the features with `skiptool feats`, which records "
                            f"how (the recogniser computes the same features from waveforms)")
    conf = dict(read_yaml(path))
    if conf.get("type") not in ("fbank", "mfcc", "mel"):
        raise SkiptoolError(f"{path}: type '{conf.get('type')}'; ctc_asr takes fbank, mfcc or mel features")
    if conf.get("cmvn", "none") != "none":
        raise SkiptoolError(f"{path}: made with --cmvn {conf['cmvn']}; ctc_asr normalises each utterance "
                            f"itself: make its features with --cmvn none")
    return conf


def ctc_asr_dataset(cfg: CTCASRConfig, data_dirs: dict[str, Path], train: bool, seed: int) -> TranscribedSpeech:
    """Registry dataset: `--data speech=DIR` (a feature dir holding `text`). Records DIR's
    conf.yaml in `cfg.feats` (written to the exp's config.yaml), or checks it against a given one."""
    feats_dir = data_dir(data_dirs, "speech", train, "ctc_asr")
    conf = feats_conf_of(feats_dir)
    if cfg.feats is None:
        cfg.feats = conf
    elif {k: v for k, v in cfg.feats.items() if k != "cmvn_stats"} != \
            {k: v for k, v in conf.items() if k != "cmvn_stats"}:
        differ = sorted(k for k in set(cfg.feats) | set(conf) if cfg.feats.get(k) != conf.get(k))
        raise SkiptoolError(f"{feats_dir}/conf.yaml: made with other settings than model_conf.feats "
                            f"({', '.join(differ)}); give features made with one feature config")
    dataset = TranscribedSpeech(feats_dir, cfg.cleaner)
    if dataset.speech.dim != cfg.speech_dim:
        raise SkiptoolError(f"{feats_dir}: features have {dataset.speech.dim} dims but model_conf.speech_dim "
                            f"is {cfg.speech_dim}; set it to {dataset.speech.dim}")
    return dataset


def build_ctc_asr(cfg: CTCASRConfig) -> CTCASR:
    return CTCASR(cfg)


def extraction_config(cfg: CTCASRConfig):
    """(feature type, typed feature config) of the training features recorded in `cfg.feats`."""
    from skiptool.data.feats import load_feats_config

    if not cfg.feats:
        raise SkiptoolError("model_conf.feats: empty; this ctc_asr exp dir does not say how its features were "
                            "made; retrain it with skiptool train (which records them)")
    settings = {k: v for k, v in cfg.feats.items() if k not in FEATS_PROVENANCE}
    return cfg.feats["type"], load_feats_config(cfg.feats["type"], overrides=settings)
