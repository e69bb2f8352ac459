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

# A step that runs this long or longer reports its time (a build, a download): a first set-up
# on a new machine then says where its minutes went.
REPORT_AFTER_SECONDS=${REPORT_AFTER_SECONDS:-20}

# run STEP-NAME CMD...: run a command quietly, and on failure name the step and show its tail.
run() {
  local name=$1 log started=$SECONDS
  shift
  log=$(mktemp)
  if ! "$@" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    rm -f "$log"
    fail "step '$name' failed: $*"
  fi
  rm -f "$log"
  local took=$((SECONDS - started))
  if [ "$took" -ge "$REPORT_AFTER_SECONDS" ]; then
    step "$name took $((took / 60)) min $((took % 60)) s"
  fi
}

# go_module_dir MODULE@VERSION: download a module and print its (read-only) folder.
go_module_dir() {
  go mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p'
}

# module_copy FOLDER MODULE@VERSION: a writable copy of a module in FOLDER, printed, to patch or
# to build as the main module so that its own replace and exclude directives apply (go install
# ignores them and fails).
module_copy() {
  local src work="$1/${2//[\/@]/_}"
  src=$(go_module_dir "$2")
  [ -n "$src" ] || fail "step 'fetch $2' failed"
  rm -rf "$work" && mkdir -p "$work" && cp -r "$src/." "$work" && chmod -R u+w "$work"
  echo "$work"
}

install_debian() { # PACKAGE BINARY...: Debian packages whose services tests start themselves on loopback
  local missing=() package binary
  while [ "$#" -gt 0 ]; do
    package=$1 binary=$2
    shift 2
    if [ -x "$binary" ]; then
      step "$package already installed ($binary)"
    else
      missing+=("$package")
    fi
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    step "skipped: ${missing[*]} not installed and installing needs root (apt-get install ${missing[*]})"
    return 0
  fi
  step "installing Debian's ${missing[*]} (services not started: tests run their own on loopback)"
  local policy=/usr/sbin/policy-rc.d own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1
  fi
  run "apt-get update" apt-get -o DPkg::Lock::Timeout=900 update -qq
  DEBIAN_FRONTEND=noninteractive run "install ${missing[*]}" apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}"
  [ "$own_policy" = 1 ] && rm -f "$policy"
  return 0
}
