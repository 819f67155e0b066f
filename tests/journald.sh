#!/bin/bash
# ctest fixture: start a standalone systemd-journald when none is running, and stop it when the
# last test run that uses it is done (several suites may run at once on one machine: each holds a
# mark in $users while it runs, and only a journald that a fixture started is ever stopped). Waits
# for the socket, never for a fixed time.
set -u
action=$1 pidfile=$2
dir=/run/systemd/journal
sock=$dir/socket
users=/run/tcpedu-tests/journald-users
started=/run/tcpedu-tests/journald.pid
mark=$users/$(printf '%s' "$pidfile" | md5sum | cut -c1-16)

journald_running() {
        local c
        for c in /proc/[0-9]*/comm; do
                [ "$(cat "$c" 2>/dev/null)" = systemd-journal ] && return 0
        done
        return 1
}

case $action in
start)
        rm -f "$pidfile"
        mkdir -p "$users" 2>/dev/null && touch "$mark" 2>/dev/null
        if [ -S "$sock" ] && journald_running; then
                echo "journald already running"
                exit 0
        fi
        if [ "$(id -u)" != 0 ]; then
                echo "no journald running and not root: journal tests will be skipped"
                exit 0
        fi
        # A socket file without a journald behind it (one that was stopped) would swallow every entry.
        rm -f "$sock" "$dir/stdout" "$dir/dev-log" "$dir/syslog"
        mkdir -p "$dir"
        setsid /lib/systemd/systemd-journald </dev/null >/dev/null 2>&1 &
        echo $! >"$pidfile"
        echo $! >"$started"
        for _ in $(seq 100); do
                [ -S "$sock" ] && { echo "started journald (pid $(cat "$pidfile"))"; exit 0; }
                sleep 0.05
        done
        echo "journald did not create $sock" >&2
        exit 1
        ;;
stop)
        rm -f "$mark" "$pidfile"
        # Another run still uses it: leave it; the last one out stops it.
        [ -n "$(ls -A "$users" 2>/dev/null)" ] && exit 0
        [ -f "$started" ] || exit 0
        pid=$(cat "$started")
        rm -f "$started"
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = systemd-journal ] || exit 0
        kill "$pid" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        kill -9 "$pid" 2>/dev/null
        rm -f "$sock" "$dir/stdout" "$dir/dev-log" "$dir/syslog"
        echo "stopped journald (pid $pid)"
        ;;
esac
