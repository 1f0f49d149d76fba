# Put the repository's skiptool (its .venv, made by `make install`) first on PATH.
# Sourced by every recipe's path.sh; SKIPTOOL_ROOT may be set to use another checkout.
SKIPTOOL_ROOT=${SKIPTOOL_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
if [ -x "$SKIPTOOL_ROOT/.venv/bin/skiptool" ]; then
  export PATH="$SKIPTOOL_ROOT/.venv/bin:$PATH"
fi
if ! command -v skiptool >/dev/null; then
  echo "skiptool is not installed: run 'make install' in $SKIPTOOL_ROOT" >&2; exit 1
fi
export PYTHONUNBUFFERED=1
