# Shared helpers of the install scripts: progress on stderr, one clear line on failure.
# shellcheck shell=bash

SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck disable=SC2034  # read by the scripts that source this file
PROJECT_DIR="$(dirname "$SCRIPTS_DIR")"
# shellcheck source=scripts/versions.env
. "$SCRIPTS_DIR/versions.env"

step() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }

fail() {
  printf '%s: error: %s\n' "$(basename "$0")" "$*" >&2
  exit 1
}

# run STEP-NAME CMD...: run a command quietly, and on failure name the step and show its tail.
run() {
  local name=$1 log
  shift
  log=$(mktemp)
  if ! "$@" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    rm -f "$log"
    fail "step '$name' failed: $*"
  fi
  rm -f "$log"
}
