#!/usr/bin/env bash
# skiptool demo: a few spoken digits through data prep -> Tacotron mel features ->
# Griffin-Lim -> recognition and scoring. It checks the toolkit end to end in a minute;
# the model recipes live beside it (egs/tidigit_mnist, egs/coco_emt4).
set -euo pipefail
cd "$(dirname "$0")"

# Options (--name value or --name=value; - and _ both work):
stage=1            # first stage to run
stop_stage=6       # last stage to run
nj=2               # parallel feature-extraction jobs
num_utts=20        # test utterances taken through the pipeline
corpus=auto        # fsdd | espeak | auto (FSDD when db.sh finds it, else espeak-ng digits)
n_iter=60          # Griffin-Lim iterations
dumpdir=dump       # features
expdir=exp         # vocoded audio and scores
overwrite=false    # redo stages whose output exists

help_message="Usage: $0 [options]
  e.g.: $0 --stage 2 --num-utts 50
Options (default):
  --stage N          first stage (1): 1 data, 2 features, 5 Griffin-Lim, 6 scoring
  --stop-stage N     last stage (6)
  --nj N             feature jobs (2)
  --num-utts N       test utterances used (20)
  --corpus NAME      fsdd, espeak or auto (auto)
  --n-iter N         Griffin-Lim iterations (60)
  --dumpdir DIR      feature dir (dump)
  --expdir DIR       output dir (exp)
  --overwrite BOOL   redo finished stages (false)
Corpus paths come from db.sh (FSDD)."

. ./path.sh
. ../utils/parse_options.sh
. ./db.sh

if [ "$corpus" = auto ]; then
  if [ -n "$FSDD" ]; then corpus=fsdd; else corpus=espeak; fi
fi
case "$corpus" in
  fsdd) [ -n "$FSDD" ] || { echo "$0: --corpus fsdd needs FSDD set (db.sh): the folder holding recordings/" >&2; exit 1; } ;;
  espeak) ;;
  *) echo "$0: --corpus must be fsdd, espeak or auto, got '$corpus'" >&2; exit 1 ;;
esac
ow=(); [ "$overwrite" = true ] && ow=(--overwrite)
data=data/$corpus
echo "$0: corpus $corpus, $num_utts test utterances"

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  echo "stage 1: data preparation"
  if [ ! -f "$data/.done" ] || [ "$overwrite" = true ]; then
    if [ "$corpus" = fsdd ]; then
      skiptool prep fsdd "$FSDD" "$data/full" "${ow[@]}"
    else
      skiptool prep espeak-digits "$data/full" --num-speakers 4 --takes 2 "${ow[@]}"
    fi
    skiptool data subset "$data/full/test" "$data/test" --random "$num_utts" --seed 0 "${ow[@]}"
    skiptool data validate "$data/test"
    touch "$data/.done"
  fi
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  echo "stage 2: Tacotron mel features"
  skiptool feats "$data/test" "$dumpdir/$corpus/mel/test" --type mel --nj "$nj" "${ow[@]}"
fi

# Stages 3 (training) and 4 (decoding) belong to the model recipes; the demo vocodes the
# analysed features directly to show what Griffin-Lim makes of them.

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  echo "stage 5: Griffin-Lim vocoding"
  skiptool vocode "$dumpdir/$corpus/mel/test/feats.scp" "$expdir/$corpus/griffinlim" \
    --type mel --n-iter "$n_iter" "${ow[@]}"
fi

if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  echo "stage 6: recognise with pocketsphinx (digit grammar) and score"
  results=$expdir/$corpus/RESULTS.md
  for src in original griffinlim; do
    if [ $src = original ]; then wavs=$data/test/wav.scp; else wavs=$expdir/$corpus/griffinlim/wav.scp; fi
    skiptool score --metric wer --ref "$data/test/text" --hyp-wav "$wavs" \
      --recognizer pocketsphinx --lm-text "$data/full/train/text" \
      --hyp-out "$expdir/$corpus/score_$src/text" --alignment "$expdir/$corpus/score_$src/alignment.txt" \
      --results "$results"
  done
  echo "$0: results in $results"
fi
