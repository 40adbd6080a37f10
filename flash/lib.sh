# Sourced by the flash tools (TOOL set first, for messages): messages,
# quoting, and the numbered steps that --dry-run prints without running.
say() { echo "$TOOL: $*" >&2; }
die() { say "$*"; exit 1; }
q() { printf '%q' "$1"; }
DRY=0 N=0
# step TEXT COMMAND: numbered, printed, run (as shell text: callers quote
# what they put in it with q) unless --dry-run; a failure names the step.
step() {
    N=$((N + 1))
    printf 'step %d: %s\n  $ %s\n' "$N" "$1" "$2"
    [ "$DRY" = 1 ] || eval "$2" || die "step $N failed: $1"
}
