#!/bin/bash
# Measure tcpedud against a minimal C epoll echo server (bench/baseline) and, when python3-uvloop is
# installed, a uvloop echo server, side by side in one run: A/B runs alternate, each target is run
# ROUNDS times, and one table prints the medians and their ratios for the targets of
# docs/PERFORMANCE.md. Servers run on CPU 0 and the load on CPU 1 when there are two.
#
# Usage: bench/compare.sh [SECONDS-PER-RUN [ROUNDS]]   (defaults 2 and 3)
# Builds in Release in build-bench/ (TCPEDU_BENCH_BUILD overrides). Starts journald when its socket
# is missing (as the tests do) and stops everything it started on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
secs=${1:-2}
rounds=${2:-3}
bdir=${TCPEDU_BENCH_BUILD:-$root/build-bench}

echo "== building (Release) in $bdir" >&2
cmake -S . -B "$bdir" -DCMAKE_BUILD_TYPE=Release -DTCPEDU_TESTS=OFF >/dev/null
cmake --build "$bdir" -j"$(nproc)" --target tcpedud tcpeductl tcpedu-bench echo-baseline >/dev/null
bench=$bdir/bench/tcpedu-bench

work=$(mktemp -d /tmp/tcpedu-compare.XXXXXX)
server_pid=""
cleanup() {
        stop_server
        "$root/tests/journald.sh" stop "$work/journald.pid" >/dev/null 2>&1 || true
        rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Pinning: servers on CPU 0, the load on CPU 1.
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
        pin_server="taskset -c 0" pin_load="taskset -c 1"
else
        pin_server="" pin_load=""
fi

"$root/tests/journald.sh" start "$work/journald.pid" >&2

# A free port below the ephemeral range for each server: base + 0..3.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
base=$((20000 + ($$ % 1200) * 8))
while ! port_free $base || ! port_free $((base + 1)) || ! port_free $((base + 2)) || ! port_free $((base + 3)); do
        base=$((base + 8))
done
p_echo=$base p_enh=$((base + 1)) p_chat=$((base + 2)) p_other=$((base + 3))

# RLIMIT_NOFILE for the servers and the load: the hard limit (raised when we may).
nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] && nofile=1048576
ulimit -n "$nofile"

stop_server() {
        if [ -n "$server_pid" ]; then
                kill "$server_pid" 2>/dev/null || true
                for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.05; done
                kill -9 "$server_pid" 2>/dev/null || true
                wait "$server_pid" 2>/dev/null || true
                server_pid=""
        fi
}

wait_port() {
        for _ in $(seq 200); do
                port_free "$1" || return 0
                sleep 0.05
        done
        echo "compare.sh: nothing listens on port $1" >&2
        exit 1
}

# start_tcpedud all|summary
start_tcpedud() {
        stop_server
        cat >"$work/tcpedud.conf" <<CONF
[daemon]
control_socket = $work/control.sock
log_transitions = $1
max_connections = 1000000
[server echo]
type = echo
listen = 127.0.0.1:$p_echo
max_clients = 1000000
idle_timeout = 0
[server enhanced]
type = enhanced
listen = 127.0.0.1:$p_enh
max_clients = 100000
line_timeout = 0
[server chat]
type = chat
listen = 127.0.0.1:$p_chat
max_clients = 100000
protocol = json
max_rate = 0
max_queue = 4M
history = 0
CONF
        $pin_server "$bdir/tcpedud" -c "$work/tcpedud.conf" >"$work/tcpedud.out" 2>"$work/tcpedud.err" &
        server_pid=$!
        wait_port $p_echo
        wait_port $p_chat
}

start_baseline() {
        stop_server
        $pin_server "$bdir/bench/echo-baseline" 127.0.0.1 $p_other >"$work/other.out" 2>&1 &
        server_pid=$!
        wait_port $p_other
}

have_uvloop=no
/usr/bin/python3 -c "import uvloop" 2>/dev/null && have_uvloop=yes
start_uvloop() {
        stop_server
        $pin_server /usr/bin/python3 "$root/bench/uvloop-echo.py" $p_other >"$work/other.out" 2>&1 &
        server_pid=$!
        wait_port $p_other
}

# The server's CPU time so far (user + system, all threads), in clock ticks.
server_ticks() { awk '{ print $14 + $15 }' "/proc/$server_pid/stat" 2>/dev/null || echo 0; }
tck=$(getconf CLK_TCK)

# run NAME PORT MODE ARGS...: one bench run; appends its --json line to $work/NAME, and the
# server's CPU time per unit of work (a round trip, connection or delivery), in microseconds, as
# {"server_cpu_us":X} to $work/NAME.cpu: what a server spends per message whether or not the load
# generator is the limit of the run.
run() {
        local name=$1 port=$2 mode=$3 t0 t1 line units
        shift 3
        t0=$(server_ticks)
        if ! $pin_load "$bench" "$mode" -q --json "$@" 127.0.0.1:"$port" >>"$work/$name" 2>"$work/$name.err"; then
                echo "compare.sh: $name: $(tail -1 "$work/$name.err")" >&2
                failed="$failed $name"
                return
        fi
        t1=$(server_ticks)
        line=$(tail -n 1 "$work/$name")
        units=$(sed -nE 's/.*"(round_trips|connections|deliveries)":([0-9]+),.*/\2/p' <<<"$line" | tail -n 1)
        awk -v t=$((t1 - t0)) -v n="${units:-0}" -v hz="$tck" 'BEGIN { if (n > 0) printf "{\"server_cpu_us\":%.4f}\n", t * 1e6 / hz / n }' >>"$work/$name.cpu"
}

# median NAME FIELD
median() {
        sed -n "s/.*\"$2\":\([0-9.eE+-]*\).*/\1/p" "$work/$1" | sort -g | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]; else print "nan"}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "nan"}'; }

# save_stats FILE: the daemon's counters (tcpeductl stats); a busy daemon gets three tries.
save_stats() {
        for _ in 1 2 3; do
                "$bdir/tcpeductl" -s "$work/control.sock" stats >"$1" 2>&1 && return 0
                sleep 1
        done
        echo "compare.sh: tcpeductl stats: $(tail -n 1 "$1")" >&2
        : >"$1"
}

failed=""
echo_big=(-c 50 -s 1024 -p 16 -d "$secs")
echo_pp=(-c 1 -s 1024 -p 1 -d "$secs")
echo_64k=(-c 10 -s 65536 -p 1 -d "$secs")
echo_p1=(-c 50 -s 1024 -p 1 -d "$secs")
churn=(-c 50 -d "$secs")
chat=(-m 1000 -b 4 -s 200 -p 4 -d "$secs")

for r in $(seq "$rounds"); do
        echo "== round $r of $rounds" >&2
        start_baseline
        run base_big $p_other echo "${echo_big[@]}"
        run base_pp $p_other echo "${echo_pp[@]}"
        run base_64k $p_other echo "${echo_64k[@]}"
        run base_churn $p_other churn "${churn[@]}"
        if [ $have_uvloop = yes ]; then
                start_uvloop
                run uv_big $p_other echo "${echo_big[@]}"
        fi
        start_tcpedud all
        run ted_big $p_echo echo "${echo_big[@]}"
        run ted_pp $p_echo echo "${echo_pp[@]}"
        run ted_64k $p_echo echo "${echo_64k[@]}"
        run ted_p1 $p_echo echo "${echo_p1[@]}"
        run ted_enh $p_enh enhanced "${echo_big[@]}"
        run ted_churn_all $p_echo churn "${churn[@]}"
        run ted_chat $p_chat chat "${chat[@]}"
        run ted_chat_stalled $p_chat chat "${chat[@]}" --stalled 1
        save_stats "$work/stats_all.$r"
        start_tcpedud summary
        run ted_churn $p_echo churn "${churn[@]}"
        save_stats "$work/stats_summary.$r"
done

# Idle: as many connections as the file limit lets both ends hold, up to 50,000.
idle_n=$((nofile - 2000))
[ $idle_n -gt 50000 ] && idle_n=50000
echo "== idle: $idle_n connections" >&2
start_tcpedud summary
run ted_idle $p_echo idle -c $idle_n -d 3 --rss-pid "$server_pid"
stop_server

stat_sum() { # stat_sum PREFIX KEY: summed over rounds
        cat "$work"/"$1".* 2>/dev/null | sed -n "s/^$2=//p" | awk '{s+=$1} END {print s+0}'
}

m() { median "$@"; }
cpu() { median "$1.cpu" server_cpu_us; } # the median server CPU microseconds per unit of NAME
printf '\n%-58s %12s %12s %8s %s\n' "target" "tcpedud" "reference" "ratio" "goal"
row() { printf '%-58s %12s %12s %8s %s\n' "$@"; }
a=$(m ted_big round_trips_per_s) b=$(m base_big round_trips_per_s)
row "1 echo 50c 1KiB P16 msg/s (log all) vs baseline" "$a" "$b" "$(ratio "$a" "$b")" ">= 0.90"
if [ $have_uvloop = yes ]; then
        u=$(m uv_big round_trips_per_s)
        row "1 echo 50c 1KiB P16 msg/s (log all) vs uvloop" "$a" "$u" "$(ratio "$a" "$u")" ">= 3.00"
else
        row "1 echo 50c 1KiB P16 msg/s vs uvloop" "$a" "-" "-" "python3-uvloop not installed"
fi
a=$(cpu ted_big) b=$(cpu base_big)
row "1   server CPU us/msg, baseline's vs tcpedud's" "$a" "$b" "$(ratio "$b" "$a")" ">= 0.90 (CPU)"
if [ $have_uvloop = yes ]; then
        u=$(cpu uv_big)
        row "1   server CPU us/msg, uvloop's vs tcpedud's" "$a" "$u" "$(ratio "$u" "$a")" ">= 3.00 (CPU)"
fi
a=$(m ted_pp latency_p50_us) b=$(m base_pp latency_p50_us)
row "2 echo 1c 1KiB ping-pong p50 us vs baseline" "$a" "$b" "$(ratio "$a" "$b")" "<= 1.15"
a=$(m ted_64k mib_per_s) b=$(m base_64k mib_per_s)
row "3 echo 10c 64KiB MiB/s vs baseline" "$a" "$b" "$(ratio "$a" "$b")" ">= 0.90"
a=$(m ted_churn connections_per_s) b=$(m base_churn connections_per_s)
row "4 churn 50 conn/s (log summary) vs baseline" "$a" "$b" "$(ratio "$a" "$b")" ">= 0.80"
a=$(cpu ted_churn) b=$(cpu base_churn)
row "4   server CPU us/connection, baseline's vs tcpedud's" "$a" "$b" "$(ratio "$b" "$a")" "(CPU)"
row "4   journal entries dropped (summary runs)" "$(($(stat_sum stats_summary log_dropped_queue_full) + $(stat_sum stats_summary log_dropped_write_failed)))" "-" "-" "0"
a=$(m ted_churn_all connections_per_s) b=$(m base_churn connections_per_s)
row "4   churn 50 conn/s with log all vs baseline" "$a" "$b" "$(ratio "$a" "$b")" "no stall"
row "4   log all: entries submitted / written / dropped" \
        "$(stat_sum stats_all log_submitted)" "$(stat_sum stats_all log_written)" \
        "$(($(stat_sum stats_all log_dropped_queue_full) + $(stat_sum stats_all log_dropped_write_failed)))" "counted"
a=$(m ted_idle rss_per_conn_bytes) n=$(m ted_idle open)
row "5 idle RSS bytes/connection ($n held)" "$a" "1024" "$(ratio "$a" 1024)" "<= 1.00"
a=$(m ted_chat deliveries_per_s) b=$(m ted_p1 round_trips_per_s)
row "6 chat 1000m 4b 200B deliveries/s vs tcpedud echo 50c P1" "$a" "$b" "$(ratio "$a" "$b")" ">= 1.00"
row "6   chat p99 to last member, ms" "$(awk -v v="$(m ted_chat latency_p99_us)" 'BEGIN{printf "%.1f", v/1000}')" "100" \
        "$(ratio "$(m ted_chat latency_p99_us)" 100000)" "<= 1.00"
a=$(m ted_chat_stalled deliveries_per_s) b=$(m ted_chat deliveries_per_s)
row "6   with a stalled member: deliveries/s vs without" "$a" "$b" "$(ratio "$a" "$b")" "~1.00"
row "6   with a stalled member: p99 to last member, ms" "$(awk -v v="$(m ted_chat_stalled latency_p99_us)" 'BEGIN{printf "%.1f", v/1000}')" "100" \
        "$(ratio "$(m ted_chat_stalled latency_p99_us)" 100000)" "<= 1.00"
a=$(m ted_enh round_trips_per_s) b=$(m ted_big round_trips_per_s)
row "7 enhanced JSON echo 50c 1KiB P16 req/s vs tcpedud echo" "$a" "$b" "$(ratio "$a" "$b")" ">= 0.60"
a=$(cpu ted_enh) b=$(cpu ted_big)
row "7   server CPU us/msg, echo's vs enhanced's" "$a" "$b" "$(ratio "$b" "$a")" "(CPU)"
echo
echo "medians of $rounds alternating runs of ${secs}s; servers ${pin_server:-unpinned}, load ${pin_load:-unpinned}; $(nproc) CPUs"
echo "(CPU) rows: the server's CPU time per unit of work, in microseconds (clock ticks of 1/$tck s);"
echo "their ratio is how many times less CPU tcpedud spends, whether or not the load generator was the limit"
if [ -n "$failed" ]; then
        echo "runs that failed:$failed" >&2
        exit 1
fi
