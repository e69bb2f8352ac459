set -euo pipefail
umask 022

# TOMCAT_CD_ROOT lays every file this script writes under another folder instead of / (the
# tests run it so, over SSH, against a throwaway root); system commands still run as written.
root="${TOMCAT_CD_ROOT:-}"
changes=0

# Progress goes to standard error: standard output is left for what a step hands on (JSON).
say() { printf '%s: %s\n' "$1" "$2" >&2; }
changed() { say changed "$1"; changes=$((changes + 1)); }

# Runs a command on the system (apt-get, systemctl, kubeadm, ...), showing it first.
system() {
  say run "$*"
  "$@"
}

# ensure_dir PATH [MODE]: the folder exists with that mode.
ensure_dir() {
  local path="$root$1" mode="${2:-755}"
  if [ -d "$path" ] && [ "$(stat -c %a "$path")" = "$mode" ]; then
    return 0
  fi
  mkdir -p "$path"
  chmod "$mode" "$path"
  changed "$1"
}

# ensure_owner PATH USER: the path (not what is inside) belongs to USER and its group.
ensure_owner() {
  if [ "$(stat -c %U:%G "$root$1")" != "$2:$2" ]; then
    chown "$2:$2" "$root$1"
    changed "$1 owned by $2"
  fi
}

# ensure_file PATH MODE < CONTENT: the file holds exactly CONTENT with that mode.
# Returns 0 when it changed it, 1 when it was already so: `if ensure_file ...; then reload; fi`.
ensure_file() {
  local path="$root$1" mode="$2" staged
  staged="$(mktemp)"
  cat >"$staged"
  if [ -f "$path" ] && cmp -s "$staged" "$path" && [ "$(stat -c %a "$path")" = "$mode" ]; then
    rm -f "$staged"
    return 1
  fi
  mkdir -p "$(dirname "$path")"
  install -m "$mode" "$staged" "$path"
  rm -f "$staged"
  changed "$1"
  return 0
}

# installed PACKAGE [VERSION]: Debian says the package is installed (at that version).
installed() {
  local status
  status="$(dpkg-query -W -f='${Status} ${Version}' "$1" 2>/dev/null)" || return 1
  case "$status" in
    "install ok installed ${2:-}"*) return 0 ;;
    *) return 1 ;;
  esac
}

# ensure_packages PACKAGE...: apt-get installs whichever are missing, in one call.
ensure_packages() {
  local missing=() package
  for package in "$@"; do
    installed "$package" || missing+=("$package")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  system apt-get update -qq
  DEBIAN_FRONTEND=noninteractive system apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# fetch URL PATH: download once; a file already there is kept.
fetch() {
  [ -s "$root$2" ] && return 0
  mkdir -p "$(dirname "$root$2")"
  system curl -fsSL --retry 3 -o "$root$2" "$1"
  changed "$2"
}

finish() {
  if [ "$changes" -eq 0 ]; then
    say ok "nothing to change"
  else
    say changed "$changes in all"
  fi
}
