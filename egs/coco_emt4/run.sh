#!/usr/bin/env bash
# coco_emt4: skip-modal image -> speech (paper 000, MIB). The model learns from an image-caption
# corpus (COCO, else the built-in `shapes`) and a separate text-speech corpus (EMT-4-style list or
# LJSpeech, else the built-in espeak-ng sentences) that share only text: no image is ever paired
# with speech, yet it speaks images.
#   stage 1  data: both corpora as Kaldi data dirs, and their vocabulary overlap
#   stage 2  features: images; Tacotron mel + linear spectrograms; FBank for the recogniser; token list
#   stage 3  training: the CTC recogniser (for scoring) and the models of --models
#   stage 4  decoding: every direction each model supports, and embeddings for retrieval
#   stage 5  Griffin-Lim: generated linear spectrograms -> wavs
#   stage 6  scoring -> exp/<setup>/RESULTS.md (recogniser first, then the paper's tables)
set -euo pipefail
cd "$(dirname "$0")"

# Options (--name value or --name=value; - and _ both work):
stage=1                 # first stage to run
stop_stage=6            # last stage to run
nj=2                    # parallel feature-extraction jobs
device=auto             # auto | cpu | cuda: where to train and decode
config=conf/train_mib.yaml   # MIB training config; the other models use conf/train_<model>.yaml
tag=                    # suffix of the exp dir names, e.g. --tag lr1e-3 -> exp/<setup>/mib_lr1e-3
models="mib"            # models to train, decode and score: mib, its ablations mib_no_memory
                        # mib_fc_memory mib_no_transformer mib_no_adversarial, mib_alternating
                        # (alternating batches, Table 5), baselines piecewise cyclegan, and
                        # tts (MIB's text -> speech path alone, on the text-speech corpus)
image_corpus=auto       # auto | coco | shapes
speech_corpus=auto      # auto | emt4 | ljspeech | espeak
image_size=64           # image side in pixels (the paper: 128); must match model_conf.image_size
num_images=60           # built-in shapes: training images (5 captions each)
num_test_images=20      # built-in shapes: dev and test images each
num_sentences=300       # built-in espeak-ng corpus: training utterances
num_test_sentences=40   # built-in espeak-ng corpus: dev and test utterances each
token_type=char         # char (the paper's 66 symbols) | bpe (sentencepiece)
nbpe=100                # bpe vocabulary size
train_args="train.max_epochs=5"    # overrides for the generative models (MODEL:KEY=VALUE: that model
                        # only): a 2-core CPU budget; the configs' own schedule: --train-args ""
asr_args=""             # overrides for the CTC recogniser (conf/train_ctc_asr.yaml)
epochs=                 # override train.max_epochs of every model, the recogniser included (empty: as set)
n_iter=60               # Griffin-Lim iterations
average_nbest=0         # decode with the mean weights of the N best epochs by dev loss (0: best.pt)
overwrite=false         # redo finished steps

help_message="Usage: $0 [options]
  e.g.: COCO=/corpora/coco LJSPEECH=/corpora/LJSpeech-1.1 $0 --image-size 128 --train-args \"\"
        $0 --models \"mib mib_no_memory piecewise cyclegan\"   # the built-in corpora, more models
        $0 --stage 3 --tag long --epochs 100                   # resume or redo training under another tag
Options (default):
  --stage N              first stage (1): 1 data, 2 features, 3 training, 4 decoding, 5 vocoding, 6 scoring
  --stop-stage N         last stage (6)
  --nj N                 feature-extraction jobs (2)
  --device DEV           auto, cpu or cuda (auto)
  --config FILE          MIB training config (conf/train_mib.yaml)
  --tag NAME             suffix of exp dir names (none)
  --models LIST          models, quoted (\"mib\"); known: mib mib_no_memory mib_fc_memory mib_no_transformer
                         mib_no_adversarial mib_alternating piecewise cyclegan tts (others are skipped)
  --image-corpus NAME    auto, coco or shapes (auto: coco when COCO is set in db.sh)
  --speech-corpus NAME   auto, emt4, ljspeech or espeak (auto: the first of EMT4, LJSPEECH set, else espeak)
  --image-size N         image side in pixels (64; the paper: 128)
  --num-images N         built-in shapes: training images (60)
  --num-test-images N    built-in shapes: dev and test images each (20)
  --num-sentences N      built-in espeak-ng corpus: training utterances (300)
  --num-test-sentences N built-in espeak-ng corpus: dev and test utterances each (40)
  --token-type TYPE      char or bpe (char)
  --nbpe N               bpe vocabulary size (100)
  --train-args \"K=V ...\" config overrides for the generative models; MODEL:K=V for one model only
                         (\"train.max_epochs=5\"), e.g. \"train.max_epochs=20 cyclegan:model_conf.cycle_weight=5\"
  --asr-args \"K=V ...\"   config overrides for the CTC recogniser (none)
  --epochs N             override every model's train.max_epochs, the recogniser's included (as set)
  --n-iter N             Griffin-Lim iterations (60)
  --average-nbest N      decode the mean of the N best epochs' weights (ESPnet's nbest averaging;
                         stage 3 keeps their checkpoints, stage 4 averages them); 0 decodes best.pt (0)
  --overwrite BOOL       redo finished steps (false)
Corpus locations come from db.sh (or the environment)."

. ./path.sh
. ../utils/parse_options.sh
. ./db.sh

# ----------------------------------------------------------------------------- corpora
if [ "$image_corpus" = auto ]; then
  if [ -n "$COCO" ]; then image_corpus=coco; else image_corpus=shapes; fi
fi
if [ "$speech_corpus" = auto ]; then
  speech_corpus=espeak
  for var in EMT4 LJSPEECH; do
    if [ -n "${!var}" ]; then speech_corpus=$(echo "$var" | tr 'A-Z' 'a-z'); break; fi
  done
fi
case "$image_corpus" in
  coco) [ -n "$COCO" ] || { echo "$0: --image-corpus coco needs COCO set (db.sh)" >&2; exit 1; } ;;
  shapes) ;;
  *) echo "$0: --image-corpus must be auto, coco or shapes, got '$image_corpus'" >&2; exit 1 ;;
esac
case "$speech_corpus" in
  emt4|ljspeech)
    speech_var=$(echo "$speech_corpus" | tr 'a-z' 'A-Z')
    [ -n "${!speech_var}" ] || { echo "$0: --speech-corpus $speech_corpus needs $speech_var set (db.sh)" >&2; exit 1; } ;;
  espeak) ;;
  *) echo "$0: --speech-corpus must be auto, emt4, ljspeech or espeak, got '$speech_corpus'" >&2; exit 1 ;;
esac
case "$token_type" in char|bpe) ;; *) echo "$0: --token-type must be char or bpe, got '$token_type'" >&2; exit 1 ;; esac
setup=${image_corpus}_${speech_corpus}   # names the data, dump and exp dirs of this corpus pair
if [ "$image_corpus" = shapes ] && [ "$speech_corpus" = espeak ]; then
  echo "$0: no corpus set in db.sh: using the built-in corpora (shapes scenes + espeak-ng sentences)"
fi
echo "$0: setup $setup (images and captions: $image_corpus, text and speech: $speech_corpus)"

data=data/$setup
dump=dump/$setup
exp=exp/$setup
suffix=${tag:+_$tag}
token_list=$data/token_list/$token_type
ow=(); [ "$overwrite" = true ] && ow=(--overwrite)
epoch_override=(); [ -n "$epochs" ] && epoch_override=(train.max_epochs="$epochs")
decode=decode_test; checkpoint=(); keep_nbest=(); results_name=RESULTS$suffix
if [ "$average_nbest" -gt 0 ]; then   # decode dirs and RESULTS name the averaged checkpoint
  decode=decode_test_ave${average_nbest}best; checkpoint=(--checkpoint "ave_${average_nbest}best")
  keep_nbest=(train.keep_nbest="$average_nbest"); results_name=${results_name}_ave${average_nbest}best
fi
stage_done() { [ -f "$1/.done" ] && [ "$overwrite" != true ]; }

# --- the models: add one here (its config, extra overrides, decoding directions, training data)
model_config() {  # the training config of model $1
  case $1 in
    mib|mib_alternating) echo "$config" ;;
    *) echo "conf/train_$1.yaml" ;;
  esac
}
model_args() {  # overrides the recipe adds for model $1 (tokens, image size, batching)
  local args=""
  if [ "$1" != tts ]; then args="model_conf.image_size=$image_size"; fi
  case $1 in
    mib*|piecewise|tts)  # the models that read text through a token list
      args="$args model_conf.token_type=$token_type model_conf.token_list=$token_list"
      if [ "$token_type" = bpe ]; then args="$args model_conf.vocab_size=$nbpe"; fi ;;
  esac
  if [ "$1" = mib_alternating ]; then args="$args model_conf.batching=alternating"; fi
  echo "$args"
}
model_tasks() {  # what model $1 generates (skiptool decode --task), in the order decoded
  case $1 in
    mib*) echo "image2text speech2text text2speech image2speech text2image embed" ;;
    piecewise) echo "image2text image2speech text2speech" ;;
    cyclegan) echo "image2speech" ;;
    tts) echo "text2speech" ;;
  esac
}
model_data() {  # the training and dev feature dirs of model $1 (tts: the text-speech corpus only)
  local set flag
  for set in train dev; do
    flag=--data; if [ $set = dev ]; then flag=--dev-data; fi
    if [ "$1" != tts ]; then echo "$flag image=$dump/image/$set"; fi
    echo "$flag speech=$dump/mel/$set $flag linear=$dump/linear/$set"
  done
}
available_models() {  # the models of --models this skiptool can train; the others are named and skipped
  local m
  for m in $models; do
    if [ -z "$(model_tasks "$m")" ]; then
      echo "$0: skipping model '$m': unknown to this recipe (add it to model_config/model_tasks in run.sh)" >&2
    elif ! skiptool train --config "$(model_config "$m")" --print-config >/dev/null 2>&1; then
      echo "$0: skipping model '$m': $(model_config "$m") is missing or names a model this skiptool lacks" >&2
    else
      echo "$m"
    fi
  done
}
train_args_of() {  # the --train-args entries for model $1: unprefixed ones and its own MODEL:K=V ones
  local arg key out=""
  for arg in $train_args; do
    key=${arg%%=*}
    if [[ "$key" != *:* ]]; then out="$out $arg"
    elif [ "${key%%:*}" = "$1" ]; then out="$out ${arg#*:}"
    fi
  done
  echo "$out"
}
has_task() { case " $(model_tasks "$1") " in *" $2 "*) return 0 ;; *) return 1 ;; esac; }

if [ "$stop_stage" -ge 3 ] && [ "$stage" -le 6 ]; then
  use_models=$(available_models | tr '\n' ' ')
  echo "$0: models: ${use_models:-none}"
fi

# ----------------------------------------------------------------------------- stage 1
if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  echo "stage 1: data preparation"
  # every corpus in use is checked before any work starts
  if [ "$image_corpus" = coco ]; then local/check_db.sh COCO "$COCO"; fi
  if [ "$speech_corpus" != espeak ]; then local/check_db.sh "$speech_var" "${!speech_var}"; fi
  if ! stage_done "$data/image"; then
    if [ "$image_corpus" = coco ]; then
      skiptool prep coco "$COCO" "$data/image" "${ow[@]}"
    else
      skiptool prep shapes "$data/image" --num-train "$num_images" --num-dev "$num_test_images" \
        --num-test "$num_test_images" --image-size "$image_size" "${ow[@]}"
    fi
    # WER of speech generated from an image is scored against its first caption: one reference per key
    awk '!seen[$1]++' "$data/image/test/captions" > "$data/image/test/first_caption"
    touch "$data/image/.done"
  fi
  if ! stage_done "$data/speech"; then
    case "$speech_corpus" in
      emt4) skiptool prep emt4 "$EMT4" "$data/speech" "${ow[@]}" ;;
      ljspeech) skiptool prep ljspeech "$LJSPEECH" "$data/speech" "${ow[@]}" ;;
      espeak) skiptool prep espeak-sentences "$data/speech" --num-train "$num_sentences" \
                --num-dev "$num_test_sentences" --num-test "$num_test_sentences" "${ow[@]}" ;;
    esac
    for set in train dev test; do skiptool data validate "$data/speech/$set"; done
    touch "$data/speech/.done"
  fi
  # The two corpora share only part of their words (paper 000: 26%)
  skiptool token overlap "$data/image/train" "$data/speech/train" | tee "$data/vocabulary_overlap.txt"
fi

# ----------------------------------------------------------------------------- stage 2
if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  echo "stage 2: features (images; mel + linear spectrograms; FBank for the recogniser) and token list"
  for set in train dev test; do
    skiptool feats "$data/image/$set" "$dump/image/$set" --type image --conf conf/image.yaml \
      --set height="$image_size" --set width="$image_size" --nj "$nj" "${ow[@]}"
    for type in mel linear fbank; do
      skiptool feats "$data/speech/$set" "$dump/$type/$set" --type $type --conf conf/$type.yaml --nj "$nj" "${ow[@]}"
    done
  done
  if ! stage_done "$token_list"; then
    skiptool token list "$data/image/train" "$data/speech/train" -o "$token_list" --token-type "$token_type" \
      --nbpe "$nbpe" --overwrite
    touch "$token_list/.done"
  fi
fi

# ----------------------------------------------------------------------------- stage 3
if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  echo "stage 3: training (a rerun resumes each model from its last checkpoint)"
  # The recogniser that scores generated speech: real speech of the text-speech corpus only
  skiptool train --config conf/train_ctc_asr.yaml --exp-dir "$exp/ctc_asr" \
    --data speech="$dump/fbank/train" --dev-data speech="$dump/fbank/dev" --device "$device" "${ow[@]}" \
    $asr_args "${epoch_override[@]}"
  for m in $use_models; do
    skiptool train --config "$(model_config "$m")" --exp-dir "$exp/$m$suffix" $(model_data "$m") \
      --device "$device" "${ow[@]}" $(model_args "$m") $(train_args_of "$m") "${epoch_override[@]}" \
      "${keep_nbest[@]}"
  done
fi

# ----------------------------------------------------------------------------- stage 4
decode_inputs() {  # --data arguments of task $1
  case $1 in
    image2text|image2speech) echo "--data image=$dump/image/test" ;;
    speech2text) echo "--data speech=$dump/mel/test" ;;
    text2speech) echo "--data text=$data/speech/test" ;;
    text2image) echo "--data text=$data/image/test" ;;
    embed) echo "--data image=$dump/image/test --data speech=$dump/mel/test" ;;
  esac
}
if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  echo "stage 4: decoding (every direction of each model; embeddings for retrieval)"
  if [ "$average_nbest" -gt 0 ]; then
    for m in $use_models; do skiptool average "$exp/$m$suffix" --nbest "$average_nbest" --overwrite; done
  fi
  for m in $use_models; do
    for task in $(model_tasks "$m"); do
      skiptool decode "$exp/$m$suffix" "$exp/$m$suffix/$decode/$task" --task "$task" \
        $(decode_inputs "$task") --device "$device" "${checkpoint[@]}" "${ow[@]}"
    done
  done
fi

# ----------------------------------------------------------------------------- stage 5
if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  echo "stage 5: Griffin-Lim vocoding of the generated linear spectrograms"
  for m in $use_models; do
    for task in text2speech image2speech; do
      has_task "$m" $task || continue
      dir=$exp/$m$suffix/$decode/$task
      if [ -f "$dir/wav/wav.scp" ] && [ "$overwrite" != true ]; then echo "$dir/wav: already vocoded"; continue; fi
      skiptool vocode "$dir/linear/feats.scp" "$dir/wav" --type linear --n-iter "$n_iter" "${ow[@]}"
    done
  done
fi

# ----------------------------------------------------------------------------- stage 6
if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  echo "stage 6: scoring"
  results=$exp/$results_name.md
  rm -f "$results"   # remade from scratch: each stage-6 run writes one complete file
  section() { printf '\n## %s\n\n' "$1" >> "$results"; }
  # the CTC recogniser spells only words of its own training transcripts (a lexicon, as pocketsphinx's LM)
  asr=(--recognizer ctc --asr-exp "$exp/ctc_asr" --lm-text "$data/speech/train/text")

  section "Recognisers on real held-out speech of the text-speech corpus (the paper's bar: WER <= 5%)"
  skiptool score --metric wer --normalize --system "ctc_asr, real test speech" --ref "$data/speech/test/text" \
    --hyp-wav "$data/speech/test/wav.scp" "${asr[@]}" --hyp-out "$exp/ctc_asr/decode_test/text" \
    --alignment "$exp/ctc_asr/decode_test/alignment.txt" --results "$results"
  skiptool score --metric wer --normalize --system "pocketsphinx, real test speech" --ref "$data/speech/test/text" \
    --hyp-wav "$data/speech/test/wav.scp" --lm-text "$data/speech/train/text" \
    --hyp-out "$exp/pocketsphinx_test/text" --results "$results"

  section "Table 1: image -> speech (Griffin-Lim audio transcribed by ctc_asr) against the image's captions"
  for m in $use_models; do
    has_task "$m" image2speech || continue
    dir=$exp/$m$suffix/$decode/image2speech
    skiptool score --metric bleu --normalize --system "$m$suffix image->speech" --ref "$data/image/test/captions" \
      --hyp-wav "$dir/wav/wav.scp" "${asr[@]}" --hyp-out "$dir/ctc_asr/text" --results "$results"
  done
  for m in $use_models; do  # the same transcripts: one table of BLEU rows, then one of WER rows
    has_task "$m" image2speech || continue
    skiptool score --metric wer --normalize --system "$m$suffix image->speech (first caption)" \
      --ref "$data/image/test/first_caption" --hyp "$exp/$m$suffix/$decode/image2speech/ctc_asr/text" \
      --results "$results"
  done

  section "image -> text: BLEU against the image's captions"
  for m in $use_models; do
    has_task "$m" image2text || continue
    skiptool score --metric bleu --normalize --system "$m$suffix image->text" --ref "$data/image/test/captions" \
      --hyp "$exp/$m$suffix/$decode/image2text/text" --results "$results"
  done

  section "speech -> text and text -> speech (Griffin-Lim audio transcribed by ctc_asr): WER"
  for m in $use_models; do
    has_task "$m" speech2text || continue
    skiptool score --metric wer --normalize --system "$m$suffix speech->text" --ref "$data/speech/test/text" \
      --hyp "$exp/$m$suffix/$decode/speech2text/text" --results "$results"
  done
  for m in $use_models; do
    has_task "$m" text2speech || continue
    dir=$exp/$m$suffix/$decode/text2speech
    skiptool score --metric wer --normalize --system "$m$suffix text->speech" --ref "$data/speech/test/text" \
      --hyp-wav "$dir/wav/wav.scp" "${asr[@]}" --hyp-out "$dir/ctc_asr/text" --results "$results"
  done

  section "Cross-modal retrieval by cosine similarity of u (recall@1/5/10)"
  for m in $use_models; do
    has_task "$m" embed || continue
    dir=$exp/$m$suffix/$decode/embed
    # within each corpus: an image and its captions (A), an utterance and its transcript (B), both ways
    skiptool score --metric recall@k --system "$m$suffix image<->caption" --query "$dir/image.scp" \
      --candidates "$dir/image_text.scp" --matches "$dir/image2text.matches" --both-directions --results "$results"
    skiptool score --metric recall@k --system "$m$suffix speech<->transcript" --query "$dir/speech.scp" \
      --candidates "$dir/speech_text.scp" --both-directions --results "$results"
  done
  echo "$0: results in $results"
fi
