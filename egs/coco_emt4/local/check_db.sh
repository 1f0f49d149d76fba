#!/usr/bin/env bash
# Usage: local/check_db.sh VAR PATH
# Checks that corpus variable VAR (from db.sh) points to a corpus in the layout its preparer
# reads; otherwise prints one line naming VAR and the layout expected, and exits 1.
var=$1 path=$2
case $var in
  COCO)     layout="annotations/captions_{train,val}<year>.json + {train,val}<year>/ images, or dataset_coco.json"
            ok=$( (ls "$path"/annotations/captions_*.json "$path"/dataset_coco.json "$path"/*/dataset_coco.json) 2>/dev/null | head -n 1) ;;
  LJSPEECH) layout="metadata.csv and wavs/<id>.wav"
            ok=$([ -f "$path/metadata.csv" ] && [ -d "$path/wavs" ] && echo yes) ;;
  EMT4)     layout="a list 'wav<TAB>text<TAB>emotion', or a folder with train.tsv, dev.tsv, test.tsv"
            if [ -f "$path" ]; then ok=yes; else ok=$([ -f "$path/train.tsv" ] && [ -f "$path/test.tsv" ] && echo yes); fi ;;
  *) echo "$0: unknown corpus variable $var" >&2; exit 1 ;;
esac
if [ ! -e "$path" ]; then
  echo "$var=$path: not found; set $var in db.sh to the corpus ($layout) or leave it empty" >&2
  exit 1
fi
if [ -z "$ok" ]; then
  echo "$var=$path: not in the expected layout $layout; point $var at the corpus" >&2
  exit 1
fi
