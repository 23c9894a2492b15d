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

# parse_options "NAME ..." ARGS...: each `--NAME VALUE` in ARGS sets the variable NAME (dashes
# become underscores); --dry-run sets DRY_RUN=1; what follows `--` is left in EXTRA_ARGS.
EXTRA_ARGS=()
# shellcheck disable=SC2034  # EXTRA_ARGS is read by the scripts that source this file
parse_options() {
  # (locals prefixed: printf -v must reach the caller's variables, not these)
  local _names=" $1 " _opt
  shift
  while [ $# -gt 0 ]; do
    case "$1" in
      --dry-run) DRY_RUN=1; shift ;;
      --) shift; EXTRA_ARGS=("$@"); return ;;
      --*)
        _opt="${1#--}"
        [[ "$_names" == *" $_opt "* ]] || die "unknown argument '$1' (training overrides go after --)"
        [ -n "${2:-}" ] || die "$1 needs a value"
        printf -v "${_opt//-/_}" '%s' "$2"
        shift 2
        ;;
      *) die "unknown argument '$1' (training overrides go after --)" ;;
    esac
  done
}

# require NAME...: each --NAME option was given.
require() {
  local _opt _var
  for _opt in "$@"; do
    _var="${_opt//-/_}"
    [ -n "${!_var:-}" ] || die "--$_opt is required"
  done
}

# need_int NAME VALUE: VALUE is a positive integer.
need_int() {
  [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "$1 must be a positive integer, got '$2'"
}
