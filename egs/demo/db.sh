# Corpus locations. Set them in the environment or edit here; empty means "not available".
# FSDD: the Free Spoken Digit Dataset root (the folder holding recordings/).
# Default: ../shared/data/fsdd beside the repository, when present.
_shared="$SKIPTOOL_ROOT/../shared/data"
FSDD=${FSDD-}
if [ -z "$FSDD" ] && [ -d "$_shared/fsdd/recordings" ]; then FSDD=$(cd "$_shared/fsdd" && pwd); fi
unset _shared
