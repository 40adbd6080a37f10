# shellcheck shell=bash
# tests/lib.sh: what every test script shares. Sourced, never run:
#
#     . "$(dirname "$0")/lib.sh"
#
# Checks:      ok TEXT, fail TEXT, check TEXT CMD..., report LABEL
#              (PASSED and FAILED count them; `report` prints the total and
#              is the script's last command: its status is the test's).
#              A test that wants more printed after each FAIL line (a log's
#              tail, a console) defines `on_fail`.
# Waiting:     wait_for SECONDS CMD... (polls every WAIT_STEP seconds).
# Processes:   end_pid PID [SIGNAL], stop_pid PIDFILE [SIGNAL]; pid_add PID
#              has a background job of this shell ($!) ended at exit. Always
#              by PID, never by name.
# Namespaces:  ns_add NAME makes a network namespace with lo up, deleted at
#              exit.
# At exit (normal end, a failed check, `exit 1`, Ctrl-C: the trap runs on
# EXIT, INT and TERM exit with 130): the processes given to pid_add are
# ended, the test's own `cleanup` function runs if it defines one, then the
# namespaces made by ns_add are deleted. The exit status is kept.

PASSED=0 FAILED=0
WAIT_STEP=0.2        # wait_for's poll interval; a test may set its own
_LIB_PIDS=()         # pid_add
_LIB_NETNS=()        # ns_add

ok() { PASSED=$((PASSED + 1)); echo "ok   - $*"; }
fail() {
    FAILED=$((FAILED + 1)); echo "FAIL - $*"
    if declare -F on_fail >/dev/null; then on_fail; fi
}
check() { # check TEXT CMD...: ok TEXT when CMD succeeds, else fail TEXT
    local what=$1; shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}
report() { # report LABEL: "LABEL N passed, M failed"; fails when any check did
    echo "${1:+$1 }$PASSED passed, $FAILED failed"
    [ "$FAILED" = 0 ]
}

wait_for() { # wait_for SECONDS CMD...: retry CMD (output hidden) until it succeeds
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -ge "$deadline" ] && return 1
        sleep "$WAIT_STEP"
    done
}

end_pid() { # end_pid PID [SIGNAL]: signal (TERM), up to 5 s to go, then SIGKILL
    local pid=$1
    [ -n "$pid" ] || return 0
    kill "-${2:-TERM}" "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null   # our own child: no "Killed" notice, no zombie
    _lib_forget "$pid"
    return 0
}
stop_pid() { # stop_pid PIDFILE [SIGNAL]: end_pid the PID in PIDFILE, remove the file
    [ -f "$1" ] || return 0
    end_pid "$(cat "$1")" "${2:-TERM}"
    rm -f "$1"
}
pid_add() { _LIB_PIDS+=("$@"); } # pid_add PID...: a job of this shell, ended (end_pid) at exit
_lib_forget() { # ended: not ended again at exit (its PID may be reused by then)
    local keep=() p
    for p in "${_LIB_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    _LIB_PIDS=("${keep[@]}")
}

ns_add() { # ns_add NAME: a new network namespace, lo up, deleted at exit
    # A namespace of that name left by a killed run goes first.
    ip netns del "$1" 2>/dev/null
    ip netns add "$1" || return 1
    _LIB_NETNS+=("$1")
    ip -n "$1" link set lo up
}

_lib_exit() {
    local rc=$? p n
    trap - EXIT
    # Only what is still this shell's child: a PID that ended on its own
    # may belong to another process by now. All signalled at once, then
    # each waited for: one slow process costs 5 s, not N.
    local mine=()
    for p in "${_LIB_PIDS[@]}"; do
        [ "$(ps -o ppid= -p "$p" 2>/dev/null | tr -d ' ')" = "$$" ] && mine+=("$p")
    done
    for p in "${mine[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${mine[@]}"; do end_pid "$p"; done
    if declare -F cleanup >/dev/null; then cleanup; fi
    for n in "${_LIB_NETNS[@]}"; do ip netns del "$n" 2>/dev/null; done
    exit "$rc"
}
trap _lib_exit EXIT
trap 'exit 130' INT TERM
