#!/usr/bin/env bash
# Usage: local/check_db.sh VAR PATH
# Checks that corpus variable VAR (from db.sh) points to a folder in the layout its preparer
# reads; otherwise prints one line naming VAR and the layout expected, and exits 1.
var=$1 dir=$2
case $var in
  TIDIGITS) layout="tidigits/{train,test}/{man,woman,boy,girl}/<speaker>/<digits><a|b>.wav"
            ok=$(find "$dir" -maxdepth 4 -type d -name train 2>/dev/null | head -n 1) ;;
  FSDD)     layout="recordings/<digit>_<speaker>_<take>.wav"
            ok=$(find "$dir/recordings" -maxdepth 1 -name '*_*_*.wav' 2>/dev/null | head -n 1) ;;
  AUDIOMNIST) layout="data/<01..60>/<digit>_<speaker>_<take>.wav"
            ok=$(find "$dir/data" -mindepth 2 -maxdepth 2 -name '*_*_*.wav' 2>/dev/null | head -n 1) ;;
  SPEECH_COMMANDS) layout="zero/ ... nine/ with <hash>_nohash_<n>.wav, validation_list.txt, testing_list.txt"
            ok=$([ -d "$dir/zero" ] && [ -f "$dir/testing_list.txt" ] && echo yes) ;;
  MNIST)    layout="t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz] (train-* optional)"
            ok=$(find "$dir" -maxdepth 1 -name 't10k-images-idx3-ubyte*' 2>/dev/null | head -n 1) ;;
  *) echo "$0: unknown corpus variable $var" >&2; exit 1 ;;
esac
if [ ! -d "$dir" ]; then
  echo "$var=$dir: no such folder; set $var in db.sh to the corpus root ($layout) or leave it empty" >&2
  exit 1
fi
if [ -z "$ok" ]; then
  echo "$var=$dir: not in the expected layout $layout; point $var at the corpus root" >&2
  exit 1
fi
