# Corpus locations: set them in the environment or here. Empty = not available.
# With none set, the recipe uses its built-in corpora: `shapes` (drawn scenes with five captions
# each, like COCO) and `espeak` (sentences spoken by one espeak-ng voice in four emotion styles).
#
#   COCO      MS COCO root: annotations/captions_{train,val}<year>.json with {train,val}<year>/ image
#             folders, or dataset_coco.json (Karpathy split) beside the image folders
#   LJSPEECH  LJSpeech root: metadata.csv (id|text|normalized text) and wavs/<id>.wav
#   EMT4      an EMT-4-style list 'wav<TAB>text<TAB>emotion' (emotion: neutral, happy, sad, angry;
#             wav paths relative to the list), or a folder holding train.tsv, dev.tsv and test.tsv
#
# e.g.  COCO=/corpora/coco LJSPEECH=/corpora/LJSpeech-1.1 ./run.sh
COCO=${COCO-}
LJSPEECH=${LJSPEECH-}
EMT4=${EMT4-}
