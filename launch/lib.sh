# shellcheck shell=bash
# Shared by the launch scripts (sourced, never run): --dry-run printing and argument checks.
# A script sets DRY_RUN=1 for --dry-run; then `run CMD...` prints CMD, shell-quoted so that it can
# be pasted back, instead of running it, and nothing else the script does touches anything.

DRY_RUN="${DRY_RUN:-0}"

# run CMD...: run CMD, or print it (one line, shell-quoted) under --dry-run.
run() {
  if [ "$DRY_RUN" = 1 ]; then
    local out="" arg
    for arg in "$@"; do
      out+="$(printf '%q' "$arg") "
    done
    printf '%s\n' "${out% }"
  else
    "$@"
  fi
}

# note TEXT: a comment line for the reader (stderr, so dry-run stdout holds commands only).
note() {
  printf '# %s\n' "$*" >&2
}

die() {
  printf '%s: %s\n' "$(basename "$0")" "$*" >&2
  exit 2
}

# need_value FLAG VALUE: FLAG must be followed by a value.
need_value() {
  [ -n "${2:-}" ] || die "$1 needs a value"
}

# need_int NAME VALUE: VALUE is a positive integer.
need_int() {
  [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "$1 must be a positive integer, got '$2'"
}
