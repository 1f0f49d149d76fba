# Environment for this recipe: skiptool on PATH (add your own settings below).
. ../utils/path.sh
