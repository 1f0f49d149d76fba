#!/usr/bin/env bash
# tidigit_mnist: spoken + written digits. The partitioned VAE (PVAE, paper 004) learns a
# semantic latent z_s shared by speech and images and per-modality style latents z_a (speech)
# and z_i (image); baselines PVAE without CM, JMVAE-kl, VAE-sp and VAE-im use the same modules.
#   stage 1  data: spoken digits (db.sh corpus, else espeak-ng) + written digits (MNIST, else sklearn)
#   stage 2  features: 80-dim FBank after energy VAD + global CMVN; 28x28 gray images
#   stage 3  training: digit and speaker classifiers (for scoring) and the models, all by `skiptool train`
#   stage 4  decoding: latents, speech->image and image->speech in reference styles, style grids
#   stage 5  Griffin-Lim: generated FBank -> wavs
#   stage 6  scoring: purity (Table 1), classifier accuracy (digit; speaker = the reference's voice),
#            speaker identification by the speaker classifier's embeddings (the reference's voice) and
#            WER of the generations -> RESULTS.md
set -euo pipefail
cd "$(dirname "$0")"

# Options (--name value or --name=value; - and _ both work):
stage=1                 # first stage to run
stop_stage=6            # last stage to run
nj=2                    # parallel feature-extraction jobs
device=auto             # auto | cpu | cuda: where to train and decode
config=conf/train_pvae.yaml   # PVAE training config (the paper's; conf/train_pvae_crossmodal.yaml: tuned
                        # for cross-modal generation; conf/train_pvae_crossmodal_aug.yaml: that plus image
                        # augmentation, the model of RESULTS.md's headline; conf/train_pvae_crossmodal_voice.yaml:
                        # that in the reference's voice); baselines use conf/train_<model>.yaml
tag=                    # suffix of the exp dir names, e.g. --tag lr2e-3 -> exp/<setup>/pvae_lr2e-3
models="pvae pvae_nocm jmvae_kl vae_sp vae_im"   # models to train, decode and score
speech_corpus=auto      # auto | tidigits | fsdd | audiomnist | speech_commands | espeak
image_corpus=auto       # auto | mnist | sklearn
fsdd_split=standard     # standard (takes 0-4 are test) | speaker (one speaker held out)
test_speaker=theo       # the held-out speaker of --fsdd-split speaker
espeak_speakers=30      # built-in corpus: synthetic speakers (voice + variant + prosody)
espeak_takes=5          # built-in corpus: takes of every digit per speaker
train_args="train.max_epochs=10 train.batch_size=64"  # overrides for the PVAE models: a 2-core CPU
                        # budget; the paper's schedule is the configs' own (400 epochs, batch 256): --train-args ""
epochs=                 # override train.max_epochs of every model, classifiers included (empty: the configs')
average_nbest=0         # decode with the mean weights of the N best epochs by dev loss (0: best.pt)
style_draws=1           # cross-modal generations per test item, each in the style of another seeded reference
n_iter=60               # Griffin-Lim iterations
overwrite=false         # redo finished steps

help_message="Usage: $0 [options]
  e.g.: FSDD=../../../shared/data/fsdd MNIST=../../../shared/data/mnist $0 --stage 1
        $0 --stage 3 --tag long --epochs 100       # resume or redo training under another tag
Options (default):
  --stage N             first stage (1): 1 data, 2 features, 3 training, 4 decoding, 5 vocoding, 6 scoring
  --stop-stage N        last stage (6)
  --nj N                feature-extraction jobs (2)
  --device DEV          auto, cpu or cuda (auto)
  --config FILE         PVAE training config (conf/train_pvae.yaml, the paper's; conf/train_pvae_crossmodal.yaml
                        is tuned for cross-modal generation, conf/train_pvae_crossmodal_aug.yaml adds image
                        augmentation: one of its two runs met every target, see RESULTS.md;
                        conf/train_pvae_crossmodal_voice.yaml also takes the style reference's voice)
  --tag NAME            suffix of exp dir names (none)
  --models LIST         models, quoted (\"pvae pvae_nocm jmvae_kl vae_sp vae_im\")
  --speech-corpus NAME  auto, tidigits, fsdd, audiomnist, speech_commands or espeak (auto:
                        the first of TIDIGITS, FSDD, AUDIOMNIST, SPEECH_COMMANDS set in db.sh, else espeak)
  --image-corpus NAME   auto, mnist or sklearn (auto: mnist when MNIST is set)
  --fsdd-split NAME     standard or speaker (standard)
  --test-speaker NAME   held-out FSDD speaker for --fsdd-split speaker (theo)
  --espeak-speakers N   speakers of the built-in espeak-ng digits (30)
  --espeak-takes N      takes per digit and speaker of the built-in digits (5)
  --train-args \"K=V ...\" config overrides for the PVAE models (\"train.max_epochs=10 train.batch_size=64\":
                        a CPU budget; \"\" trains the configs' paper schedule, 400 epochs of batch 256)
  --epochs N            override every model's train.max_epochs, classifiers included (the configs')
  --average-nbest N     decode the mean of the N best epochs' weights (ESPnet's nbest averaging;
                        stage 3 keeps their checkpoints, stage 4 averages them); 0 decodes best.pt (0)
  --style-draws K       generate each test item K times, in the styles of K seeded references, and score
                        the pooled generations (decode dirs and RESULTS end in _<K>draws); 1 draw (1)
  --n-iter N            Griffin-Lim iterations (60)
  --overwrite BOOL      redo finished steps (false)
Corpus locations come from db.sh (or the environment)."

. ./path.sh
. ../utils/parse_options.sh
. ./db.sh

# ----------------------------------------------------------------------------- corpora
if [ "$speech_corpus" = auto ]; then
  speech_corpus=espeak
  for var in TIDIGITS FSDD AUDIOMNIST SPEECH_COMMANDS; do
    if [ -n "${!var}" ]; then speech_corpus=$(echo "$var" | tr 'A-Z' 'a-z'); break; fi
  done
fi
if [ "$image_corpus" = auto ]; then
  if [ -n "$MNIST" ]; then image_corpus=mnist; else image_corpus=sklearn; fi
fi
case "$speech_corpus" in
  tidigits|fsdd|audiomnist|speech_commands)
    speech_var=$(echo "$speech_corpus" | tr 'a-z' 'A-Z')
    [ -n "${!speech_var}" ] || { echo "$0: --speech-corpus $speech_corpus needs $speech_var set (db.sh)" >&2; exit 1; } ;;
  espeak) ;;
  *) echo "$0: --speech-corpus must be auto, tidigits, fsdd, audiomnist, speech_commands or espeak, got '$speech_corpus'" >&2; exit 1 ;;
esac
case "$image_corpus" in
  mnist) [ -n "$MNIST" ] || { echo "$0: --image-corpus mnist needs MNIST set (db.sh)" >&2; exit 1; } ;;
  sklearn) ;;
  *) echo "$0: --image-corpus must be auto, mnist or sklearn, got '$image_corpus'" >&2; exit 1 ;;
esac
speech_name=$speech_corpus
[ "$speech_corpus" = fsdd ] && [ "$fsdd_split" = speaker ] && speech_name=fsdd-${test_speaker}
setup=${speech_name}_${image_corpus}     # names the data, dump and exp dirs of this corpus pair
if [ "$speech_corpus" = espeak ] && [ "$image_corpus" = sklearn ]; then
  echo "$0: no corpus set in db.sh: using the built-in corpus (espeak-ng digits + scikit-learn digits)"
fi
echo "$0: setup $setup (speech: $speech_corpus, images: $image_corpus)"

data=data/$setup
dump=dump/$setup
exp=exp/$setup
suffix=${tag:+_$tag}
ow=(); [ "$overwrite" = true ] && ow=(--overwrite)
epoch_override=(); [ -n "$epochs" ] && epoch_override=(train.max_epochs="$epochs")
decode=decode_test; checkpoint=(); keep_nbest=(); results_name=RESULTS$suffix
if [ "$average_nbest" -gt 0 ]; then   # decode dirs and RESULTS name the averaged checkpoint
  decode=decode_test_ave${average_nbest}best; checkpoint=(--checkpoint "ave_${average_nbest}best")
  keep_nbest=(train.keep_nbest="$average_nbest"); results_name=${results_name}_ave${average_nbest}best
fi
draws=(); if [ "$style_draws" -gt 1 ]; then   # one score over K reference draws per test item
  draws=(--draws "$style_draws"); decode=${decode}_${style_draws}draws; results_name=${results_name}_${style_draws}draws
fi

model_config() {  # the training config of model $1
  if [ "$1" = pvae ]; then echo "$config"; else echo "conf/train_$1.yaml"; fi
}
speech_models() {  # models of the list that encode speech / images / both
  for m in $models; do case $m in vae_im) ;; *) echo "$m" ;; esac; done
}
image_models() {
  for m in $models; do case $m in vae_sp) ;; *) echo "$m" ;; esac; done
}
cross_models() {
  for m in $models; do case $m in vae_sp|vae_im) ;; *) echo "$m" ;; esac; done
}
stage_done() { [ -f "$1/.done" ] && [ "$overwrite" != true ]; }
speakers_of() { cut -d' ' -f1 "$dump/fbank/$1/spk2utt"; }   # the speakers of a feature set
# The voice of generated speech is scored with a speaker classifier, trained when there are >= 2
# training speakers. Its hidden layer embeds voices: an utterance is identified among >= 2 test
# speakers (skiptool score --metric speaker-id), seen in training or not. When every test speaker is
# a training speaker (FSDD's standard split), the classifier also names them (--metric accuracy).
speaker_classifier_trainable() { [ "$(speakers_of train | wc -l)" -ge 2 ]; }
test_speakers_seen() { [ -z "$(speakers_of test | grep -vxF -f <(speakers_of train))" ]; }
test_speakers_identifiable() { [ "$(speakers_of test | wc -l)" -ge 2 ]; }

# ----------------------------------------------------------------------------- stage 1
if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  echo "stage 1: data preparation"
  if ! stage_done "$data/speech"; then
    local_dir=data/local/$speech_name
    case "$speech_corpus" in
      tidigits) local/check_db.sh TIDIGITS "$TIDIGITS"
                skiptool prep tidigits "$TIDIGITS" "$local_dir" "${ow[@]}" ;;
      fsdd) local/check_db.sh FSDD "$FSDD"
            skiptool prep fsdd "$FSDD" "$local_dir" --split "$fsdd_split" --test-speaker "$test_speaker" "${ow[@]}" ;;
      audiomnist) local/check_db.sh AUDIOMNIST "$AUDIOMNIST"
                  skiptool prep audiomnist "$AUDIOMNIST" "$local_dir" "${ow[@]}" ;;
      speech_commands) local/check_db.sh SPEECH_COMMANDS "$SPEECH_COMMANDS"
                       skiptool prep speech-commands "$SPEECH_COMMANDS" "$local_dir" "${ow[@]}" ;;
      espeak) skiptool prep espeak-digits "$local_dir" --num-speakers "$espeak_speakers" \
                --takes "$espeak_takes" "${ow[@]}" ;;
    esac
    mkdir -p "$data/speech"
    if [ -d "$local_dir/dev" ]; then
      for set in train dev test; do
        rm -rf "$data/speech/$set"; cp -r "$local_dir/$set" "$data/speech/$set"
      done
    else  # FSDD and the built-in digits come as train/test: hold out 10% of train as dev
      skiptool data split "$local_dir/train" "$data/speech/part" --ratios 0.9,0.1 --by key --seed 0 --overwrite
      rm -rf "$data/speech/train" "$data/speech/dev" "$data/speech/test"
      mv "$data/speech/part1" "$data/speech/train"
      mv "$data/speech/part2" "$data/speech/dev"
      cp -r "$local_dir/test" "$data/speech/test"
    fi
    for set in train dev test; do skiptool data validate "$data/speech/$set"; done
    touch "$data/speech/.done"
  fi
  if ! stage_done "$data/image"; then
    if [ "$image_corpus" = mnist ]; then
      local/check_db.sh MNIST "$MNIST"
      # with only the 10k test split: a seeded stratified train/dev/test split (prep mnist --help)
      skiptool prep mnist "$MNIST" "$data/image" "${ow[@]}"
    else
      skiptool prep sklearn-digits "$data/image" "${ow[@]}"
    fi
    for set in train dev test; do skiptool data validate "$data/image/$set"; done
    touch "$data/image/.done"
  fi
fi

# ----------------------------------------------------------------------------- stage 2
if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  echo "stage 2: features (FBank + VAD + global CMVN; 28x28 images)"
  skiptool feats "$data/speech/train" "$dump/fbank/train" --type fbank --conf conf/fbank.yaml \
    --cmvn global --nj "$nj" "${ow[@]}"
  for set in dev test; do
    skiptool feats "$data/speech/$set" "$dump/fbank/$set" --type fbank --conf conf/fbank.yaml \
      --cmvn global --cmvn-stats "$dump/fbank/train/cmvn.ark" --nj "$nj" "${ow[@]}"
  done
  for set in train dev test; do
    skiptool feats "$data/image/$set" "$dump/image/$set" --type image --conf conf/image.yaml --nj "$nj" "${ow[@]}"
  done
fi

# ----------------------------------------------------------------------------- stage 3
if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  echo "stage 3: training (a rerun resumes each model from its last checkpoint)"
  skiptool train --config conf/train_image_classifier.yaml --exp-dir "$exp/image_classifier" \
    --data image="$dump/image/train" --dev-data image="$dump/image/dev" --device "$device" "${ow[@]}" \
    "${epoch_override[@]}"
  skiptool train --config conf/train_speech_classifier.yaml --exp-dir "$exp/speech_classifier" \
    --data speech="$dump/fbank/train" --dev-data speech="$dump/fbank/dev" --device "$device" "${ow[@]}" \
    "${epoch_override[@]}"
  if speaker_classifier_trainable; then   # its classes: the training speakers, in spk2utt's order
    skiptool train --config conf/train_speaker_classifier.yaml --exp-dir "$exp/speaker_classifier" \
      --data speech="$dump/fbank/train" --dev-data speech="$dump/fbank/dev" --device "$device" "${ow[@]}" \
      "${epoch_override[@]}" model_conf.num_classes="$(speakers_of train | wc -l)" \
      model_conf.class_names="[$(speakers_of train | sed 's/.*/"&"/' | paste -sd,)]"
  else
    echo "$0: fewer than 2 training speakers: no speaker classifier, so no score of the reference's voice"
  fi
  for m in $models; do
    skiptool train --config "$(model_config "$m")" --exp-dir "$exp/$m$suffix" \
      --data speech="$dump/fbank/train" --data image="$dump/image/train" \
      --dev-data speech="$dump/fbank/dev" --dev-data image="$dump/image/dev" \
      --device "$device" "${ow[@]}" $train_args "${epoch_override[@]}" "${keep_nbest[@]}"
  done
fi

# ----------------------------------------------------------------------------- stage 4
if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  echo "stage 4: decoding (latents; cross-modal generation in reference styles; style grids)"
  if [ "$average_nbest" -gt 0 ]; then
    for m in $models; do skiptool average "$exp/$m$suffix" --nbest "$average_nbest" --overwrite; done
  fi
  for m in $models; do
    inputs=()
    case $m in vae_im) ;; *) inputs+=(--data speech="$dump/fbank/test") ;; esac
    case $m in vae_sp) ;; *) inputs+=(--data image="$dump/image/test") ;; esac
    skiptool decode "$exp/$m$suffix" "$exp/$m$suffix/$decode/embed" --task embed "${inputs[@]}" \
      --device "$device" "${checkpoint[@]}" "${ow[@]}"
  done
  for m in $(cross_models); do
    dir=$exp/$m$suffix/$decode
    skiptool decode "$exp/$m$suffix" "$dir/speech2image" --task speech2image \
      --data speech="$dump/fbank/test" --style image="$dump/image/test" --device "$device" "${checkpoint[@]}" "${draws[@]}" "${ow[@]}"
    skiptool decode "$exp/$m$suffix" "$dir/image2speech" --task image2speech \
      --data image="$dump/image/test" --style speech="$dump/fbank/test" --device "$device" "${checkpoint[@]}" "${draws[@]}" "${ow[@]}"
    # the same styles at the model's mean training length: a reference's own length is that of its
    # digit ("seven" in the time of "one"), which the style should not decide (RESULTS.md)
    skiptool decode "$exp/$m$suffix" "$dir/image2speech_mean_length" --task image2speech --num-frames mean \
      --data image="$dump/image/test" --style speech="$dump/fbank/test" --device "$device" "${checkpoint[@]}" "${draws[@]}" "${ow[@]}"
    # the same styles, each output as long as the decoder takes to say its digit and settle
    skiptool decode "$exp/$m$suffix" "$dir/image2speech_settled" --task image2speech --num-frames settled \
      --data image="$dump/image/test" --style speech="$dump/fbank/test" --device "$device" "${checkpoint[@]}" "${draws[@]}" "${ow[@]}"
    skiptool decode "$exp/$m$suffix" "$dir/grids" --task grids \
      --data speech="$dump/fbank/test" --data image="$dump/image/test" --device "$device" "${checkpoint[@]}" "${ow[@]}"
  done
fi

# ----------------------------------------------------------------------------- stage 5
if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  echo "stage 5: Griffin-Lim vocoding of the generated FBank"
  for m in $(cross_models); do
    dir=$exp/$m$suffix/$decode/image2speech
    if [ -f "$dir/griffinlim/wav.scp" ] && [ "$overwrite" != true ]; then echo "$dir/griffinlim: already vocoded"; continue; fi
    skiptool vocode "$dir/feats.scp" "$dir/griffinlim" --type fbank --n-iter "$n_iter" "${ow[@]}"
  done
fi

# ----------------------------------------------------------------------------- stage 6
if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  echo "stage 6: scoring"
  results=$exp/$results_name.md
  rm -f "$results"   # remade from scratch: each stage-6 run writes one complete file
  section() { printf '\n## %s\n\n' "$1" >> "$results"; }
  section "Digit classifiers and recogniser on real test data"
  skiptool score --metric accuracy --system "image classifier, real test images" --ref "$dump/image/test/utt2label" \
    --classifier "$exp/image_classifier" --feats "$dump/image/test" --results "$results"
  skiptool score --metric accuracy --system "speech classifier, real test speech" --ref "$dump/fbank/test/utt2label" \
    --classifier "$exp/speech_classifier" --feats "$dump/fbank/test" --results "$results"
  skiptool score --metric wer --system "pocketsphinx, real test speech" --ref "$data/speech/test/text" \
    --hyp-wav "$data/speech/test/wav.scp" --lm-text "$data/speech/train/text" \
    --hyp-out "$exp/pocketsphinx_test/text" --alignment "$exp/pocketsphinx_test/alignment.txt" \
    --results "$results"
  if [ -d "$exp/speaker_classifier" ] && test_speakers_seen; then
    skiptool score --metric accuracy --system "speaker classifier, real test speech" --ref "$dump/fbank/test/utt2spk" \
      --classifier "$exp/speaker_classifier" --feats "$dump/fbank/test" --results "$results"
  fi
  if [ -d "$exp/speaker_classifier" ] && test_speakers_identifiable; then   # leave-one-out: each test utterance
    # against the mean voices of the test speakers, its own speaker's without it
    skiptool score --metric speaker-id --system "speaker embeddings, real test speech (leave-one-out)" \
      --ref "$dump/fbank/test/utt2spk" --classifier "$exp/speaker_classifier" --feats "$dump/fbank/test" \
      --enroll "$dump/fbank/test" --results "$results"
  fi

  section "Table 1: weighted k-means purity (10 clusters) of latents inferred by the unimodal encoders"
  for m in $models; do
    dir=$exp/$m$suffix/$decode/embed
    for scp in "$dir"/*_z*.scp; do
      name=$(basename "$scp" .scp)        # e.g. speech_z_s
      modality=${name%%_*}
      skiptool score --metric purity --system "$m$suffix $name" --ref "$dir/${modality}_utt2label" \
        --feats "$scp" --inertia-plot "$dir/${name}_inertia.png" --tsne-plot "$dir/${name}_tsne.png" \
        --results "$results"
    done
  done

  section "Cross-modal generation: accuracy of the digit classifiers on the generations"
  for m in $(cross_models); do
    dir=$exp/$m$suffix/$decode
    skiptool score --metric accuracy --system "$m$suffix speech->image" --ref "$dir/speech2image/utt2label" \
      --classifier "$exp/image_classifier" --feats "$dir/speech2image" --results "$results"
    skiptool score --metric accuracy --system "$m$suffix image->speech" --ref "$dir/image2speech/utt2label" \
      --classifier "$exp/speech_classifier" --feats "$dir/image2speech" --results "$results"
    skiptool score --metric accuracy --system "$m$suffix image->speech, mean length" \
      --ref "$dir/image2speech_mean_length/utt2label" --classifier "$exp/speech_classifier" \
      --feats "$dir/image2speech_mean_length" --results "$results"
    skiptool score --metric accuracy --system "$m$suffix image->speech, settled length" \
      --ref "$dir/image2speech_settled/utt2label" --classifier "$exp/speech_classifier" \
      --feats "$dir/image2speech_settled" --results "$results"
    if [ -f "$dir/image2speech/style_utt2label" ]; then   # the digit leaking from the style reference
      skiptool score --metric accuracy --system "$m$suffix image->speech says the reference's digit (low is right)" \
        --ref "$dir/image2speech/style_utt2label" --classifier "$exp/speech_classifier" \
        --feats "$dir/image2speech" --results "$results"
    fi
  done

  if [ -d "$exp/speaker_classifier" ] && ! test_speakers_seen && ! test_speakers_identifiable; then
    echo "$0: one test speaker, unseen in training: no score of the generated voices"
  elif [ -d "$exp/speaker_classifier" ]; then
    section "Speaking style: the speaker classifier on image->speech (right = the style reference's speaker)"
    for m in $(cross_models); do
      dir=$exp/$m$suffix/$decode/image2speech
      if [ ! -f "$dir/utt2spk" ]; then   # decoded before decode wrote utt2spk
        echo "$0: $dir/utt2spk missing (decoded by an older skiptool): rerun from --stage 4 with --overwrite true to score the voice of $m$suffix"; continue
      fi
      if test_speakers_seen; then
        skiptool score --metric accuracy --system "$m$suffix image->speech, reference's speaker" --ref "$dir/utt2spk" \
          --classifier "$exp/speaker_classifier" --feats "$dir" --results "$results"
      fi
      if test_speakers_identifiable; then
        skiptool score --metric speaker-id --system "$m$suffix image->speech, reference's speaker (embeddings)" \
          --ref "$dir/utt2spk" --classifier "$exp/speaker_classifier" --feats "$dir" --enroll "$dump/fbank/test" \
          --results "$results"
      fi
    done
  fi

  section "Cross-modal generation: WER of the Griffin-Lim audio of image->speech (pocketsphinx, digit grammar)"
  for m in $(cross_models); do
    dir=$exp/$m$suffix/$decode/image2speech
    skiptool score --metric wer --system "$m$suffix image->speech" --ref "$dir/text" \
      --hyp-wav "$dir/griffinlim/wav.scp" --lm-text "$data/speech/train/text" \
      --hyp-out "$dir/pocketsphinx/text" --alignment "$dir/pocketsphinx/alignment.txt" --results "$results"
  done
  echo "$0: results in $results; style grids in $exp/<model>/$decode/grids, t-SNE and inertia plots in .../embed"
fi
