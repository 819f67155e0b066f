#!/bin/bash
# ctest fixture: start a standalone systemd-journald when none is running, stop it afterwards
# only if this script started it. Waits for the socket, never for a fixed time.
set -u
action=$1 pidfile=$2
dir=/run/systemd/journal
sock=$dir/socket

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
        for _ in $(seq 100); do
                [ -S "$sock" ] && { echo "started journald (pid $(cat "$pidfile"))"; exit 0; }
                sleep 0.05
        done
        echo "journald did not create $sock" >&2
        exit 1
        ;;
stop)
        [ -f "$pidfile" ] || exit 0
        pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        kill -9 "$pid" 2>/dev/null
        rm -f "$pidfile" "$sock" "$dir/stdout" "$dir/dev-log" "$dir/syslog"
        echo "stopped journald (pid $pid)"
        ;;
esac
