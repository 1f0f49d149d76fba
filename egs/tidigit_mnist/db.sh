# Corpus locations: set them in the environment or here. Empty = not available.
# With no spoken-digit corpus set, the recipe uses its built-in espeak-ng digits; with no MNIST,
# scikit-learn's bundled 8x8 digits upscaled to 28x28.
#
#   TIDIGITS         LDC93S10 root: tidigits/{train,test}/{man,woman,boy,girl}/<spk>/<digits><a|b>.wav
#   FSDD             Free Spoken Digit Dataset root: recordings/{digit}_{speaker}_{index}.wav
#   AUDIOMNIST       AudioMNIST root: data/<01..60>/{digit}_{speaker}_{index}.wav
#   SPEECH_COMMANDS  Google Speech Commands root: zero/ ... nine/, validation_list.txt, testing_list.txt
#   MNIST            folder with t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz (train-* optional)
#
# e.g.  FSDD=../../../shared/data/fsdd MNIST=../../../shared/data/mnist ./run.sh
TIDIGITS=${TIDIGITS-}
FSDD=${FSDD-}
AUDIOMNIST=${AUDIOMNIST-}
SPEECH_COMMANDS=${SPEECH_COMMANDS-}
MNIST=${MNIST-}
