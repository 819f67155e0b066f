#!/bin/bash
# ctest fixture: start a standalone systemd-journald when none is running, stop it afterwards
# only if this script started it. Waits for the socket, never for a fixed time.
set -u
action=$1 pidfile=$2
sock=/run/systemd/journal/socket
case $action in
start)
        rm -f "$pidfile"
        if [ -S "$sock" ]; then
                echo "journald already running"
                exit 0
        fi
        if [ "$(id -u)" != 0 ]; then
                echo "no journald running and not root: journal tests will be skipped"
                exit 0
        fi
        mkdir -p /run/systemd/journal
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
        rm -f "$pidfile"
        echo "stopped journald (pid $pid)"
        ;;
esac
