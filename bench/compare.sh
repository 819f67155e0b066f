#!/bin/bash
# Measure tcpedud against a minimal C epoll echo server (bench/baseline) and, when python3-uvloop is
# installed, a uvloop echo server, side by side in one run: A/B runs alternate, each target is run
# ROUNDS times, and one table prints the medians and their ratios for the targets of
# docs/PERFORMANCE.md. Servers run on CPU 0 and the load on CPU 1 when there are two.
#
# The kernel state source is a dimension of its own (target 8): the rows of targets 1-7 run tcpedud
# with kernel_source = tcp_info, and pipelined echo and churn run again with kernel_source = bpf,
# alternating with their tcp_info runs; the bpf/tcp_info ratios, the daemon's CPU per kernel event
# and the BPF programs' own run time per event (kernel.bpf_stats_enabled for one extra run, set back
# afterwards) print in a second table. When eBPF cannot load here (tcpedud with kernel_source = bpf
# does not start, or its status says tcp_info), that table is one line: "bpf: skipped: <reason>".
#
# Usage: bench/compare.sh [--sources both|tcp_info] [--kernel-only] [SECONDS-PER-RUN [ROUNDS]]
#   (defaults: both, 2 s, 3 rounds)
#   --sources tcp_info   targets 1-7 only, no bpf runs
#   --kernel-only        target 8 only: tcpedud's echo and churn runs with each source, no baseline,
#                        uvloop, chat, enhanced or idle runs
# Builds in Release in build-bench/ (TCPEDU_BENCH_BUILD overrides). Starts journald when its socket
# is missing (as the tests do) and stops everything it started on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
sources=both
full=yes
while [ $# -gt 0 ]; do
        case $1 in
        --sources) sources=${2:-}; shift 2 || shift ;;
        --sources=*) sources=${1#*=}; shift ;;
        --kernel-only) full=no; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        --) shift; break ;;
        -*) echo "compare.sh: unknown option $1 (try --help)" >&2; exit 64 ;;
        *) break ;;
        esac
done
case $sources in
both | tcp_info) ;;
*) echo "compare.sh: --sources: both or tcp_info, not '$sources'" >&2; exit 64 ;;
esac
[ $full = no ] && [ "$sources" = tcp_info ] && { echo "compare.sh: --kernel-only needs --sources both" >&2; exit 64; }
secs=${1:-2}
rounds=${2:-3}
bdir=${TCPEDU_BENCH_BUILD:-$root/build-bench}

echo "== building (Release) in $bdir" >&2
cmake -S . -B "$bdir" -DCMAKE_BUILD_TYPE=Release -DTCPEDU_TESTS=OFF >/dev/null
cmake --build "$bdir" -j"$(nproc)" --target tcpedud tcpeductl tcpedu-bench echo-baseline >/dev/null
bench=$bdir/bench/tcpedu-bench

work=$(mktemp -d /tmp/tcpedu-compare.XXXXXX)
server_pid=""
bpf_stats_old="" # kernel.bpf_stats_enabled before we set it, to be set back
bpf_stats_off() {
        if [ -n "$bpf_stats_old" ]; then
                sysctl -q -w kernel.bpf_stats_enabled="$bpf_stats_old" >/dev/null 2>&1 || true
                bpf_stats_old=""
        fi
}
cleanup() {
        bpf_stats_off
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

# try_tcpedud all|summary tcp_info|bpf: start tcpedud with that log_transitions and kernel_source;
# 0 when it listens and its status says that source, else 1 with the reason in $why (and stopped).
why=""
try_tcpedud() {
        local st src reason
        stop_server
        cat >"$work/tcpedud.conf" <<CONF
[daemon]
control_socket = $work/control.sock
log_transitions = $1
kernel_source = $2
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
        for _ in $(seq 200); do
                ! port_free $p_echo && ! port_free $p_chat && break
                if ! kill -0 "$server_pid" 2>/dev/null; then
                        wait "$server_pid" 2>/dev/null || true
                        server_pid=""
                        why="tcpedud did not start: $(tail -n 1 "$work/tcpedud.err" | sed 's/^tcpedud: //')"
                        return 1
                fi
                sleep 0.05
        done
        if port_free $p_echo || port_free $p_chat; then
                why="nothing listens on port $p_echo or $p_chat"
                stop_server
                return 1
        fi
        st=$("$bdir/tcpeductl" -s "$work/control.sock" --json status 2>&1) || true
        src=$(sed -n 's/.*"kernel":{"source":"\([a-z_]*\)".*/\1/p' <<<"$st")
        if [ "$src" != "$2" ]; then
                reason=$(sed -n 's/.*"kernel":{"source":"[a-z_]*","reason":"\([^"]*\)".*/\1/p' <<<"$st")
                why="tcpedud runs with kernel_source ${src:-unknown}: ${reason:-$st}"
                stop_server
                return 1
        fi
        return 0
}

# start_tcpedud all|summary tcp_info|bpf: the same, and compare.sh fails when that does not work.
start_tcpedud() {
        if ! try_tcpedud "$1" "$2"; then
                echo "compare.sh: tcpedud (log_transitions = $1, kernel_source = $2): $why" >&2
                exit 1
        fi
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
# generator is the limit of the run. A run during which another tcpedud had its BPF programs
# attached (seen before or after it) is run again, twice at most, 5 s later.
run() {
        local name=$1 port=$2 mode=$3 t0 t1 line units foreign try
        shift 3
        n_runs=$((n_runs + 1))
        for try in 1 2 3; do
                foreign=0
                [ "$(foreign_progs)" = 0 ] || foreign=1
                t0=$(server_ticks)
                if ! $pin_load "$bench" "$mode" -q --json "$@" 127.0.0.1:"$port" >"$work/last" 2>"$work/$name.err"; then
                        echo "compare.sh: $name: $(tail -1 "$work/$name.err")" >&2
                        failed="$failed $name"
                        return
                fi
                t1=$(server_ticks)
                [ "$(foreign_progs)" = 0 ] || foreign=1
                if [ $foreign = 0 ] || [ $try = 3 ]; then
                        break
                fi
                echo "== $name: another tcpedud's BPF programs were attached: again in 5 s" >&2
                sleep 5
        done
        foreign_runs=$((foreign_runs + foreign))
        cat "$work/last" >>"$work/$name"
        line=$(tail -n 1 "$work/last")
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

# Other tcpedud processes' BPF programs (a test suite running meanwhile): they run on every TCP state
# change of the machine, these runs' too, and make the bpf rows slower than they are.
foreign_progs() {
        local all own=0 fd
        all=$({ bpftool prog show 2>/dev/null || true; } | grep -c ' name tcpstate_' || true)
        if [ -n "$server_pid" ]; then
                for fd in /proc/"$server_pid"/fd/*; do
                        [ "$(readlink "$fd" 2>/dev/null)" = anon_inode:bpf-prog ] && own=$((own + 1))
                done
        fi
        echo $((all - own))
}
foreign_before=$(foreign_progs)
foreign_runs=0 n_runs=0

# eBPF: can tcpedud run with kernel_source = bpf here?
bpf_ok=no bpf_skip=""
if [ "$sources" = both ]; then
        if try_tcpedud summary bpf; then
                bpf_ok=yes
        else
                bpf_skip=$why
        fi
        stop_server
else
        bpf_skip="--sources $sources"
fi
if [ $bpf_ok = yes ]; then
        echo "== kernel sources: tcp_info and bpf" >&2
else
        echo "== bpf: skipped: $bpf_skip" >&2
        if [ $full = no ]; then # nothing else to run
                echo "bpf: skipped: $bpf_skip"
                exit 0
        fi
fi

# The runs of one round with log_transitions = all: with tcp_info, every tcpedud row of targets 1-7
# (with --kernel-only, the two of target 8); with bpf, those of target 8.
all_tcp_info() {
        start_tcpedud all tcp_info
        run ted_big $p_echo echo "${echo_big[@]}"
        if [ $full = yes ]; then
                run ted_pp $p_echo echo "${echo_pp[@]}"
                run ted_64k $p_echo echo "${echo_64k[@]}"
                run ted_p1 $p_echo echo "${echo_p1[@]}"
                run ted_enh $p_enh enhanced "${echo_big[@]}"
        fi
        run ted_churn_all $p_echo churn "${churn[@]}"
        if [ $full = yes ]; then
                run ted_chat $p_chat chat "${chat[@]}"
                run ted_chat_stalled $p_chat chat "${chat[@]}" --stalled 1
        fi
        save_stats "$work/stats_all.$r"
}
all_bpf() {
        start_tcpedud all bpf
        run bpf_big $p_echo echo "${echo_big[@]}"
        run bpf_churn_all $p_echo churn "${churn[@]}"
        save_stats "$work/stats_bpf_all.$r"
}
summary_tcp_info() {
        start_tcpedud summary tcp_info
        run ted_churn $p_echo churn "${churn[@]}"
        save_stats "$work/stats_summary.$r"
}
summary_bpf() {
        start_tcpedud summary bpf
        run bpf_churn $p_echo churn "${churn[@]}"
        save_stats "$work/stats_bpf_summary.$r"
}

for r in $(seq "$rounds"); do
        echo "== round $r of $rounds" >&2
        if [ $full = yes ]; then
                start_baseline
                run base_big $p_other echo "${echo_big[@]}"
                run base_pp $p_other echo "${echo_pp[@]}"
                run base_64k $p_other echo "${echo_64k[@]}"
                run base_churn $p_other churn "${churn[@]}"
                if [ $have_uvloop = yes ]; then
                        start_uvloop
                        run uv_big $p_other echo "${echo_big[@]}"
                fi
        fi
        # A, B in odd rounds, B, A in even ones.
        if [ $bpf_ok = no ]; then
                all_tcp_info
                summary_tcp_info
        elif [ $((r % 2)) = 1 ]; then
                all_tcp_info
                all_bpf
                summary_tcp_info
                summary_bpf
        else
                all_bpf
                all_tcp_info
                summary_bpf
                summary_tcp_info
        fi
done

if [ $full = yes ]; then
        # Idle: as many connections as the file limit lets both ends hold, up to 50,000.
        idle_n=$((nofile - 2000))
        [ $idle_n -gt 50000 ] && idle_n=50000
        echo "== idle: $idle_n connections" >&2
        start_tcpedud summary tcp_info
        run ted_idle $p_echo idle -c $idle_n -d 3 --rss-pid "$server_pid"
        stop_server
fi

# prog_counters FILE: for each BPF program tcpedud holds, "ID NAME RUN_TIME_NS RUN_CNT" (the
# kernel's counters, from /proc/PID/fdinfo; they count only while kernel.bpf_stats_enabled is 1).
prog_counters() {
        local fd id name
        : >"$1"
        for fd in /proc/"$server_pid"/fd/*; do
                [ "$(readlink "$fd" 2>/dev/null)" = anon_inode:bpf-prog ] || continue
                id=$(sed -n 's/^prog_id:[[:space:]]*//p' "/proc/$server_pid/fdinfo/${fd##*/}")
                name=$(bpftool prog show id "$id" 2>/dev/null | sed -n 's/.* name \([^ ]*\) .*/\1/p' | head -n 1) || true
                awk -v id="$id" -v name="${name:-prog-$id}" '/^run_time_ns:/ {t = $2} /^run_cnt:/ {c = $2}
                        END {print id, name, t + 0, c + 0}' "/proc/$server_pid/fdinfo/${fd##*/}"
        done | sort >>"$1"
}

# What a BPF program run costs: one more churn run with the kernel's BPF statistics on (they add
# two clock reads to every run of every program on the machine, so never during the runs above).
prog_skip=""
if [ $bpf_ok = yes ]; then
        echo "== bpf: program run time (kernel.bpf_stats_enabled = 1 for one churn run)" >&2
        start_tcpedud summary bpf
        old=$(sysctl -n kernel.bpf_stats_enabled 2>/dev/null) || old=""
        if [ -n "$old" ] && sysctl -q -w kernel.bpf_stats_enabled=1 >/dev/null 2>&1; then
                bpf_stats_old=$old
                prog_counters "$work/progs.before"
                run bpf_progrun $p_echo churn "${churn[@]}"
                prog_counters "$work/progs.after"
                bpf_stats_off
                save_stats "$work/stats_bpf_progrun.1"
        else
                prog_skip="cannot set kernel.bpf_stats_enabled"
        fi
        stop_server
fi

stat_sum() { # stat_sum PREFIX KEY: summed over rounds
        cat "$work"/"$1".* 2>/dev/null | sed -n "s/^$2=//p" | awk '{s+=$1} END {print s+0}'
}

m() { median "$@"; }
cpu() { median "$1.cpu" server_cpu_us; } # the median server CPU microseconds per unit of NAME
row() { printf '%-58s %12s %12s %8s %s\n' "$@"; }
if [ $full = yes ]; then
printf '\n%-58s %12s %12s %8s %s\n' "target" "tcpedud" "reference" "ratio" "goal"
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
fi

# every NAME FIELD: all runs' values, sorted (the spread behind a median)
every() { sed -n "s/.*\"$2\":\([0-9.eE+-]*\).*/\1/p" "$work/$1" | sort -g | tr '\n' ' ' | sed 's/ $//'; }
# paired A B FIELD: the ratio A/B of each round's runs (A's run i against B's run i, the same round),
# as "median (min..max)": steadier than the ratio of the medians when the machine's speed drifts.
paired() {
        paste -d' ' <(sed -n "s/.*\"$3\":\([0-9.eE+-]*\).*/\1/p" "$work/$1") \
                <(sed -n "s/.*\"$3\":\([0-9.eE+-]*\).*/\1/p" "$work/$2") |
                awk 'NF == 2 && $2 > 0 {print $1 / $2}' | sort -g |
                awk '{v[NR] = $1} END {if (NR) printf "%.2f (%.2f..%.2f)", v[int((NR + 1) / 2)], v[1], v[NR]; else print "nan"}'
}
# Target 8: the kernel sources.
printf '\n%-58s %12s %12s %8s %s\n' "target 8: kernel_source = bpf against tcp_info" "bpf" "tcp_info" "ratio" "goal"
if [ $bpf_ok = yes ]; then
        a=$(m bpf_big round_trips_per_s) b=$(m ted_big round_trips_per_s)
        row "8 echo 50c 1KiB P16 msg/s (log all)" "$a" "$b" "$(ratio "$a" "$b")" ">= 0.95"
        a=$(cpu bpf_big) b=$(cpu ted_big)
        row "8   server CPU us/msg, tcp_info's vs bpf's" "$a" "$b" "$(ratio "$b" "$a")" "(CPU)"
        a=$(m bpf_churn connections_per_s) b=$(m ted_churn connections_per_s)
        row "8 churn 50 conn/s (log summary)" "$a" "$b" "$(ratio "$a" "$b")" ">= 0.95"
        ca=$(cpu bpf_churn) cb=$(cpu ted_churn)
        row "8   server CPU us/connection, tcp_info's vs bpf's" "$ca" "$cb" "$(ratio "$cb" "$ca")" "(CPU)"
        a=$(m bpf_churn_all connections_per_s) b=$(m ted_churn_all connections_per_s)
        row "8   churn 50 conn/s with log all" "$a" "$b" "$(ratio "$a" "$b")" "no stall"
        ev=$(($(stat_sum stats_bpf_summary kernel_events) + $(stat_sum stats_bpf_all kernel_events)))
        acc=$(($(stat_sum stats_bpf_summary connections_accepted) + $(stat_sum stats_bpf_all connections_accepted)))
        lost=$(($(stat_sum stats_bpf_summary kernel_events_dropped) + $(stat_sum stats_bpf_all kernel_events_dropped)))
        fb=$(($(stat_sum stats_bpf_summary kernel_fallbacks) + $(stat_sum stats_bpf_all kernel_fallbacks)))
        epc=$(awk -v e="$ev" -v c="$acc" 'BEGIN {if (c > 0) printf "%.2f", e / c; else print "nan"}')
        row "8   bpf runs: kernel events / events per connection" "$ev" "$epc" "-" "counted"
        row "8   bpf runs: events lost / connections fallen back" "$lost" "$fb" "-" "0 / 0"
        # The daemon's CPU per event: what bpf adds per connection (churn, log summary), per event.
        ns=$(awk -v a="$ca" -v b="$cb" -v e="$epc" 'BEGIN {if (e > 0) printf "%.0f", (a - b) * 1000 / e; else print "nan"}')
        row "8   daemon CPU ns per event ((bpf - tcp_info) per conn)" "$ns" "-" "-" "(CPU)"
        if [ -z "$prog_skip" ]; then
                pev=$(stat_sum stats_bpf_progrun kernel_events)
                join "$work/progs.before" "$work/progs.after" >"$work/progs" 2>/dev/null || true
                while read -r _ name t0 c0 _ t1 c1; do
                        [ $((c1 - c0)) -gt 0 ] || continue
                        row "8   kernel: $name ns per run ($((c1 - c0)) runs)" \
                                "$(awk -v t=$((t1 - t0)) -v c=$((c1 - c0)) 'BEGIN {printf "%.0f", t / c}')" "-" "-" "(bpf_stats)"
                done <"$work/progs"
                tot=$(awk '{t += $6 - $3; c += $7 - $4} END {print t + 0, c + 0}' "$work/progs")
                row "8   kernel: BPF ns per delivered event (runs per event)" \
                        "$(awk -v t="${tot% *}" -v e="$pev" 'BEGIN {if (e > 0) printf "%.0f", t / e; else print "nan"}')" \
                        "$(awk -v c="${tot#* }" -v e="$pev" 'BEGIN {if (e > 0) printf "%.2f", c / e; else print "nan"}')" "-" "(bpf_stats)"
        else
                row "8   kernel: BPF program run time" "-" "-" "-" "skipped: $prog_skip"
        fi
else
        echo "bpf: skipped: $bpf_skip"
fi
echo
echo "medians of $rounds alternating runs of ${secs}s; servers ${pin_server:-unpinned}, load ${pin_load:-unpinned}; $(nproc) CPUs"
echo "(CPU) rows: the server's CPU time per unit of work, in microseconds (clock ticks of 1/$tck s);"
echo "their ratio is how many times less CPU tcpedud spends, whether or not the load generator was the limit"
[ $full = yes ] && echo "targets 1-7: tcpedud with kernel_source = tcp_info"
if [ $bpf_ok = yes ]; then
        echo "target 8, every run (sorted), bpf | tcp_info:"
        echo "  echo P16 msg/s:       $(every bpf_big round_trips_per_s) | $(every ted_big round_trips_per_s)"
        echo "  churn conn/s:         $(every bpf_churn connections_per_s) | $(every ted_churn connections_per_s)"
        echo "  churn CPU us/conn:    $(every bpf_churn.cpu server_cpu_us) | $(every ted_churn.cpu server_cpu_us)"
        echo "  churn (log all) c/s:  $(every bpf_churn_all connections_per_s) | $(every ted_churn_all connections_per_s)"
        echo "target 8, the ratios of the two runs of each round, median (min..max), as in the table:"
        echo "  echo P16 msg/s $(paired bpf_big ted_big round_trips_per_s), CPU/msg tcp_info's vs bpf's $(paired ted_big.cpu bpf_big.cpu server_cpu_us)"
        echo "  churn conn/s $(paired bpf_churn ted_churn connections_per_s), CPU/conn tcp_info's vs bpf's $(paired ted_churn.cpu bpf_churn.cpu server_cpu_us)"
        echo "daemon ns per event: the churn runs' median CPU per connection, bpf's less tcp_info's, over the"
        echo "kernel events per connection; kernel: run_time_ns / run_cnt of tcpedud's BPF programs in one more"
        echo "churn run with kernel.bpf_stats_enabled = 1 (the runs also count the load's own sockets, filtered)"
fi
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
foreign_after=$(foreign_progs)
if [ "$foreign_before" != 0 ] || [ "$foreign_after" != 0 ] || [ $foreign_runs != 0 ]; then
        echo "warning: other processes had tcpedud's BPF programs attached ($foreign_before at the start, $foreign_after at the end,"
        echo "around $foreign_runs of $n_runs runs even after retries): another tcpedud ran (a test suite?); its programs run on"
        echo "every TCP state change of these runs too, and it takes CPU: measure on a machine where no other tcpedud runs"
fi
if [ -n "$failed" ]; then
        echo "runs that failed:$failed" >&2
        exit 1
fi
