#!/usr/bin/env bash
# Parse `--name value` / `--name=value` options into shell variables, Kaldi style.
#
# Source it after setting every option's default: `--stop-stage 4` (or `--stop_stage 4`) sets
# $stop_stage, but only if the variable already exists; anything else is an error. `--help` prints
# $help_message. Positional arguments stay in "$@".
# (Kaldi's utils/parse_options.sh does the same; this is a small rewrite with `=` support.)

while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      printf '%s\n' "${help_message:-no help message}"; exit 0 ;;
    --*=*)
      name="${1%%=*}"; value="${1#*=}"; shift ;;
    --*)
      name="$1"
      if [ $# -lt 2 ]; then echo "$0: option $name needs a value" >&2; exit 1; fi
      value="$2"; shift 2 ;;
    *) break ;;
  esac
  var="${name#--}"; var="${var//-/_}"
  if [ -z "${!var+set}" ]; then
    echo "$0: unknown option $name (run $0 --help for the options)" >&2; exit 1
  fi
  if [ "${!var}" = true ] || [ "${!var}" = false ]; then
    case "$value" in true|false) ;; *) echo "$0: option $name takes true or false, got '$value'" >&2; exit 1 ;; esac
  fi
  printf -v "$var" '%s' "$value"
done
unset name value var
