#!/bin/bash
# End-to-end test of tcpedud as people run it: under a real systemd, installed from this build.
#
# Usage: system-test.sh BUILD_DIR WORK_DIR
#
# It boots systemd as PID 1 of new PID, mount, network, UTS, IPC and cgroup namespaces, on an
# overlay of the host's / whose writable layer is a tmpfs (container-init.sh): nothing written
# inside reaches the host, the container has its own loopback (no port clashes with anything on
# the host), and its cgroups live below one this script creates and removes. Inside, it installs
# the build (the Debian package when the build has a CPack configuration, else `cmake --install`),
# then checks each step and prints "step N: ... ok" or "FAIL step N: ..." (exit 1). The container
# is torn down on every exit. Exit status 77 (skipped): not root, no unshare, no cgroup2, or the
# namespaces and overlay cannot be made here.
# TCPEDU_SYSTEST_INSTALL=deb|cmake picks the install method instead of the automatic choice.
set -uo pipefail

build=${1:?usage: system-test.sh BUILD_DIR WORK_DIR}
work=${2:?usage: system-test.sh BUILD_DIR WORK_DIR}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
build=$(cd "$build" && pwd)
client=$here/client.py
conf=/etc/tcpedud/tcpedud.conf
MID_TRANSITION=4a1b7fd3b3b44f6a8a7d2f0e5c9c1a01
MID_RELOAD_REJECTED=4a1b7fd3b3b44f6a8a7d2f0e5c9c1a09
SECONDS=0

skip() {
        echo "SKIP: $*"
        exit 77
}

# ---- can this machine do it at all? ----
[ "$(id -u)" = 0 ] || skip "the system test boots systemd in new namespaces and needs root"
for t in unshare nsenter mount pivot_root timeout setpriv useradd awk; do
        command -v "$t" >/dev/null || skip "$t is not installed"
done
# .ci/setup installs these: without them the test fails rather than skips.
for f in /lib/systemd/systemd /usr/bin/python3; do
        [ -x "$f" ] || { echo "FAIL: $f is missing (bash .ci/setup installs it)"; exit 1; }
done
cg_mnt=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
[ -n "$cg_mnt" ] || skip "no cgroup2 hierarchy is mounted: systemd in the container needs one"
cg_self=$(awk -F: '$1 == "0" { print $3; exit }' /proc/self/cgroup)
# The container's cgroup is named after this process: its PID namespace and pid.
cg_prefix="$cg_mnt${cg_self%/}/tcpedu-systest.$(stat -L -c %i /proc/self/ns/pid)"

# What a run that was killed outright (SIGKILL) left behind: cgroups and work directories named
# after a test process that no longer exists.
for d in "$cg_prefix".*; do
        [ -d "$d" ] && ! kill -0 "${d##*.}" 2>/dev/null && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
done
for d in "$work"/run.*; do
        p=${d#"$work"/run.}
        [ -d "$d" ] && ! kill -0 "${p%%.*}" 2>/dev/null && rm -rf "$d"
done
mkdir -p "$work"
run=$(mktemp -d "$work/run.$$.XXXXXX")
probe_err=$(unshare --pid --fork --mount --net --uts --ipc --cgroup -- /bin/sh -c '
        mount --make-rprivate / && mount -t tmpfs probe "$1" && mkdir "$1/u" "$1/w" "$1/r" &&
        mount -t overlay -o "lowerdir=/,upperdir=$1/u,workdir=$1/w" probe "$1/r"' sh "$run" 2>&1) || {
        rmdir "$run"
        skip "cannot make the container's namespaces and overlay here: $probe_err"
}

# ---- the container ----
ct_pid=""     # the container's PID 1 (systemd), as the host sees it
unshare_pid=""
cgroup=""
holds=()      # host pids of held client connections

# Run a command inside the container with a clean environment, bounded in time.
ct() {
        timeout -k 5 "${CT_TIMEOUT:-60}" nsenter -t "$ct_pid" -a \
                env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root TERM=dumb SYSTEMD_PAGER= SYSTEMD_COLORS=0 \
                SYSTEMD_LESS= DEBIAN_FRONTEND=noninteractive "$@"
}

# wait_until SECONDS CMD...: run CMD every 0.1 s until it succeeds; status 1 when SECONDS pass first.
wait_until() {
        local deadline=$((SECONDS + $1))
        shift
        until "$@" >/dev/null 2>&1; do
                [ "$SECONDS" -lt "$deadline" ] || return 1
                sleep 0.1
        done
}

teardown() {
        local rc=$?
        set +e
        trap - EXIT INT TERM
        # The container's PID 1 is the child of unshare; check it still is before killing it.
        if [ -n "$ct_pid" ] && [ "$(awk '/^PPid:/ { print $2 }' "/proc/$ct_pid/status" 2>/dev/null)" = "$unshare_pid" ]; then
                kill -KILL "$ct_pid"
        fi
        # Killing the namespace's PID 1 kills every process in it, the held clients' included.
        if [ -n "$unshare_pid" ]; then
                wait_until 20 eval '! kill -0 "$unshare_pid"' || echo "teardown: unshare (pid $unshare_pid) did not exit"
                wait "$unshare_pid" 2>/dev/null
        fi
        for p in "${holds[@]}"; do
                wait_until 10 eval "! kill -0 $p" || kill -KILL "$p"
                wait "$p" 2>/dev/null
        done
        # The cgroups systemd made below ours go once their processes are gone.
        if [ -n "$cgroup" ] && [ -d "$cgroup" ]; then
                wait_until 20 eval 'find "$cgroup" -depth -type d -exec rmdir {} + 2>/dev/null; [ ! -d "$cgroup" ]' ||
                        echo "teardown: could not remove cgroup $cgroup"
        fi
        # The tmpfs was mounted in the container's mount namespace only: here the directory is empty.
        rm -rf "$run"
        echo "system test: ${SECONDS}s, exit status $rc"
        exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step_no=""
step_desc=""
step() {
        step_no=$1
        step_desc=$2
}
ok() {
        echo "step $step_no: $step_desc ... ok${1:+ ($1)}"
}
note() {
        echo "    $*"
}
fail() {
        echo "FAIL step $step_no: $step_desc: $*"
        diagnose
        exit 1
}
diagnose() {
        [ -n "$ct_pid" ] || return 0
        echo "---- systemctl status tcpedud tcpedud.socket"
        ct systemctl status --no-pager -l tcpedud.service tcpedud.socket 2>&1 | sed 's/^/    /'
        echo "---- journalctl -u tcpedud -u tcpedud.socket (last 40)"
        ct journalctl --no-pager -u tcpedud.service -u tcpedud.socket -n 40 2>&1 | sed 's/^/    /'
        echo "----"
}

# ---- step 0: boot and install ----
step 0 "boot systemd in a container and install tcpedud"

method=${TCPEDU_SYSTEST_INSTALL:-auto}
if [ "$method" = auto ]; then
        method=cmake
        [ -f "$build/CPackConfig.cmake" ] && method=deb
fi
# The package is built before the container boots: the container sees the host's files as they are
# when its overlay is mounted.
deb=""
if [ "$method" = deb ]; then
        cpack_out=$(cd "$run" && cpack -G DEB -B "$run/pkg" --config "$build/CPackConfig.cmake" 2>&1) ||
                fail "cpack -G DEB failed: $cpack_out"
        deb=$(ls "$run"/pkg/tcpedud_*.deb 2>/dev/null | head -n1)
        [ -n "$deb" ] || fail "cpack -G DEB made no tcpedud_*.deb in $run/pkg: $cpack_out"
fi

cgroup="$cg_prefix.$$"
mkdir "$cgroup" || fail "cannot create cgroup $cgroup"
mkdir "$run/ct"
# In its own cgroup (the root of the container's cgroup namespace). If this script is killed,
# unshare gets SIGKILL (--pdeathsig) and takes the container with it (--kill-child).
(
        echo "$BASHPID" >"$cgroup/cgroup.procs"
        exec setpriv --pdeathsig KILL -- unshare --pid --fork --mount --net --uts --ipc --cgroup --kill-child=SIGKILL -- \
                "$here/container-init.sh" "$run/ct" "$src" "$build"
) </dev/null >"$run/container.log" 2>&1 &
unshare_pid=$!

# Done when systemd runs, or when unshare is gone (the container's set-up failed).
container_up() {
        local c
        kill -0 "$unshare_pid" 2>/dev/null || return 0
        c=$(cat "/proc/$unshare_pid/task/$unshare_pid/children" 2>/dev/null) || return 1
        c=${c%% *}
        [ -n "$c" ] && [ "$(cat "/proc/$c/comm" 2>/dev/null)" = systemd ] || return 1
        ct_pid=$c
}
wait_until 30 container_up && [ -n "$ct_pid" ] || fail "systemd did not start in the container: $(tail -n 5 "$run/container.log")"
wait_until 30 ct test -S /run/systemd/private || fail "systemd in the container opened no /run/systemd/private: $(tail -n 5 "$run/container.log")"
state=$(CT_TIMEOUT=120 ct systemctl is-system-running --wait 2>&1)
case $state in
running) ;;
degraded) note "the container's systemd is degraded (not tcpedud's doing): $(ct systemctl --failed --plain --no-legend | awk '{ print $1 }' | tr '\n' ' ')" ;;
*) fail "the container's systemd did not boot: is-system-running says '$state'; $(tail -n 5 "$run/container.log")" ;;
esac
note "systemd is PID 1 of the container (host pid $ct_pid), booted in ${SECONDS}s"

if [ "$method" = deb ]; then
        out=$(CT_TIMEOUT=180 ct apt-get install -y --no-install-recommends "$deb" 2>&1) ||
                fail "apt-get install $(basename "$deb") failed: $(tail -n 15 <<<"$out")"
        note "installed $(basename "$deb") with apt-get"
        # What the package's maintainer scripts must have done.
        ct getent group tcpedu >/dev/null || fail "installing the package created no group tcpedu"
        ct getent passwd tcpedu >/dev/null || fail "installing the package created no user tcpedu"
        ct journalctl --list-catalog "$MID_TRANSITION" 2>/dev/null | grep -q "$MID_TRANSITION" ||
                fail "installing the package did not register the journal catalog (journalctl --list-catalog has no $MID_TRANSITION)"
        note "package state: tcpedud.service $(ct systemctl is-enabled tcpedud.service 2>&1)/$(ct systemctl is-active tcpedud.service 2>&1)," \
                "tcpedud.socket $(ct systemctl is-enabled tcpedud.socket 2>&1)/$(ct systemctl is-active tcpedud.socket 2>&1)"
        ct systemctl daemon-reload || fail "systemctl daemon-reload failed"
else
        out=$(ct cmake --install "$build" --prefix /usr 2>&1) || fail "cmake --install $build --prefix /usr failed: $(tail -n 15 <<<"$out")"
        note "installed with cmake --install $build --prefix /usr"
        # What a package's maintainer scripts would do.
        out=$(ct systemd-sysusers 2>&1) || fail "systemd-sysusers failed: $out"
        out=$(ct systemd-tmpfiles --create 2>&1) || fail "systemd-tmpfiles --create failed: $out"
        ct systemctl daemon-reload || fail "systemctl daemon-reload failed"
        out=$(ct journalctl --update-catalog 2>&1) || fail "journalctl --update-catalog failed: $out"
        ct getent passwd tcpedu >/dev/null || fail "systemd-sysusers created no user tcpedu: is tcpedud.sysusers installed?"
fi
for f in /usr/sbin/tcpedud /usr/bin/tcpeductl "$conf"; do
        ct test -e "$f" || fail "the install has no $f"
done
for u in tcpedud.service tcpedud.socket; do
        [ "$(ct systemctl show -p LoadState --value "$u")" = loaded ] || fail "systemd cannot load $u: $(ct systemctl status "$u" 2>&1 | head -n 3)"
done
note "units: $(ct systemctl show -p FragmentPath --value tcpedud.service tcpedud.socket | tr '\n' ' ')"
ok "${SECONDS}s"

# ---- step 1: start ----
step 1 "systemctl start tcpedud; is-active; status shows the daemon's STATUS="
out=$(ct systemctl start tcpedud 2>&1) || fail "systemctl start tcpedud failed: $out"
state=$(ct systemctl is-active tcpedud)
[ "$state" = active ] || fail "systemctl is-active tcpedud says '$state'"
# The daemon sends STATUS= once a second; the first may follow READY=1.
status_line() {
        status_out=$(ct systemctl status --no-pager -l tcpedud 2>&1)
        grep -Eq '^ *Status: "[0-9]+ of [0-9]+ servers running, [0-9]+ connections' <<<"$status_out"
}
wait_until 10 status_line || fail "systemctl status tcpedud shows no 'Status: \"N of M servers running, ...\"' line: $status_out"
note "$(grep -E '^ *Status:' <<<"$status_out" | sed 's/^ *//')"
main_pid=$(ct systemctl show -p MainPID --value tcpedud)
note "MainPID $main_pid, user $(ct stat -c %U "/proc/$main_pid" 2>/dev/null)"
ok

# ---- step 2: who may use the control socket ----
step 2 "tcpeductl status as root, as a member of group tcpedu, and as another user"
out=$(ct tcpeductl status 2>&1) || fail "tcpeductl status as root failed (exit $?): $out"
grep -q echo <<<"$out" || fail "tcpeductl status as root does not list the echo server: $out"
note "root: $(head -n 1 <<<"$out")"
ct useradd --no-create-home --shell /usr/sbin/nologin --groups tcpedu tcpedu-member || fail "useradd tcpedu-member failed"
ct useradd --no-create-home --shell /usr/sbin/nologin tcpedu-outsider || fail "useradd tcpedu-outsider failed"
as_user() {
        local u=$1
        shift
        ct setpriv --reuid="$u" --regid="$u" --init-groups -- "$@"
}
out=$(as_user tcpedu-member tcpeductl status 2>&1) || fail "tcpeductl status as tcpedu-member (in group tcpedu) failed (exit $?): $out"
grep -q echo <<<"$out" || fail "tcpeductl status as tcpedu-member does not list the echo server: $out"
note "tcpedu-member (group tcpedu): status ok"
sock_path=$(ct systemctl show -p Listen --value tcpedud.socket | sed -n 's/ (Stream)$//p' | head -n1)
sock_mode=$(ct systemctl show -p SocketMode --value tcpedud.socket)
[ -n "$sock_path" ] && [[ $sock_mode =~ ^[0-7]+$ ]] || fail "tcpedud.socket has no stream socket (Listen '$sock_path', SocketMode '$sock_mode')"
out=$(as_user tcpedu-outsider tcpeductl status 2>&1)
rc=$?
if [ $((8#$sock_mode & 8#0006)) = 0 ]; then
        # The socket is not open to others: the kernel refuses their connect (EACCES).
        [ $rc != 0 ] && grep -q "Permission denied" <<<"$out" ||
                fail "tcpeductl status as tcpedu-outsider (socket $sock_path mode $sock_mode): want 'Permission denied', got exit $rc: $out"
        note "tcpedu-outsider: refused by the socket's permissions (mode $sock_mode), exit $rc:"
        while read -r l; do note "  $l"; done <<<"$out"
else
        # Open to everyone: read-only answers, a mutating command is refused.
        [ $rc = 0 ] || fail "tcpeductl status as tcpedu-outsider (socket mode $sock_mode): exit $rc: $out"
        out=$(as_user tcpedu-outsider tcpeductl log-level info 2>&1)
        rc=$?
        [ $rc = 77 ] || fail "tcpeductl log-level as tcpedu-outsider: want exit 77 (permission denied), got $rc: $out"
        note "tcpedu-outsider: read-only (socket mode $sock_mode): $out"
fi
ok

# ---- step 3: the three servers ----
step 3 "echo (7007), enhanced (7008) and chat (7009) answer on 127.0.0.1"
peers=()
client_run() {
        local what=$1 out
        shift
        out=$(ct python3 "$client" "$@" 2>&1) || fail "$what: $out"
        peers+=("$(sed -n 's/^local //p' <<<"$out")")
        note "$what from ${peers[-1]}: $(tail -n 1 <<<"$out")"
}
client_run "echo" echo 7007 "hello from the system test"
client_run "enhanced" enhanced 7008
client_run "chat" chat 7009 systest
ok

# ---- step 4: reload with a new server, a connection kept open across it ----
step 4 "edit $conf, add a server, systemctl reload; an open echo connection survives"
# hold PORT: a client kept connected (client.py hold); requests go to hold_in, answers come on hold_out.
hold() {
        coproc HOLD { CT_TIMEOUT=250 ct python3 "$client" hold "$1" 2>&1; }
        holds+=("$HOLD_PID")
        hold_in=${HOLD[1]}
        hold_out=${HOLD[0]}
        local line
        read -r -t 15 -u "$hold_out" line && [[ $line == local\ * ]] || fail "the held client on port $1 did not connect: $line"
        hold_peer=${line#local }
}
hold_send() {
        echo "$1" >&"$hold_in"
}
hold_read() {
        local line
        read -r -t "${1:-15}" -u "$hold_out" line || line="(no answer)"
        echo "$line"
}
hold_ask() {
        hold_send "$1"
        hold_read "${2:-15}"
}
hold_quit() {
        echo quit >&"$hold_in"
        wait "$HOLD_PID" 2>/dev/null
}
hold 7007
[ "$(hold_ask "ping before reload")" = ok ] || fail "the held echo connection does not echo before the reload"
ct cat "$conf" >"$run/conf.orig" || fail "cannot read $conf"
{
        cat "$run/conf.orig"
        printf '\n# added by the system test\n[server extra]\ntype = echo\nlisten = 127.0.0.1:7010\n'
} >"$run/conf.extra"
ct sh -c "cat >$conf" <"$run/conf.extra" || fail "cannot write $conf"
out=$(ct systemctl reload tcpedud 2>&1) || fail "systemctl reload tcpedud failed: $out"
# The reload is synchronous: the new server listens once systemctl returns.
out=$(ct python3 "$client" echo 7010 "hello extra" 2>&1) || fail "the added server does not answer on 7010 after the reload: $out"
note "new server extra on 7010: $(tail -n 1 <<<"$out")"
ans=$(hold_ask "ping after reload")
[ "$ans" = ok ] || fail "the echo connection held across the reload ($hold_peer) no longer echoes: $ans"
note "connection from $hold_peer to 7007 open across the reload, still echoes"
ok

# ---- step 5: a broken config is rejected, the old one stays ----
step 5 "a broken config: systemctl reload fails, the service stays active with the old servers"
n=$(wc -l <"$run/conf.extra")
{
        cat "$run/conf.extra"
        printf '# broken on purpose by the system test\nno_such_key = 1\nmax_clients = many\n'
} >"$run/conf.broken"
bad1=$((n + 2)) bad2=$((n + 3))
ct sh -c "cat >$conf" <"$run/conf.broken" || fail "cannot write $conf"
out=$(ct systemctl reload tcpedud 2>&1) && fail "systemctl reload tcpedud succeeded with a broken config"
note "systemctl reload: $(head -n 1 <<<"$out")"
state=$(ct systemctl is-active tcpedud)
[ "$state" = active ] || fail "after the rejected reload tcpedud is '$state', not active"
for p in 7007 7010; do
        out=$(ct python3 "$client" echo "$p" "still here" 2>&1) || fail "after the rejected reload echo on $p does not answer: $out"
done
ans=$(hold_ask "ping after the rejected reload")
[ "$ans" = ok ] || fail "the held connection ($hold_peer) no longer echoes after the rejected reload: $ans"
journal_errors() {
        errs=$(ct journalctl --no-pager -u tcpedud -o cat MESSAGE_ID=$MID_RELOAD_REJECTED 2>&1)
        grep -qF "$conf:$bad1: unknown key 'no_such_key'" <<<"$errs" && grep -qF "$conf:$bad2: " <<<"$errs"
}
wait_until 10 journal_errors ||
        fail "journalctl -u tcpedud has no '$conf:$bad1: unknown key 'no_such_key'' and '$conf:$bad2: ...' entries; it has: $errs"
while read -r l; do note "journal: $l"; done < <(grep -F "$conf:" <<<"$errs")
# Back to the shipped config: this reload must succeed and take the added server away.
ct sh -c "cat >$conf" <"$run/conf.orig" || fail "cannot restore $conf"
out=$(ct systemctl reload tcpedud 2>&1) || fail "systemctl reload with the restored config failed: $out"
ct python3 "$client" echo 7010 "gone?" >/dev/null 2>&1 && fail "after restoring the config the server on 7010 still answers"
ans=$(hold_ask "ping after the restore")
[ "$ans" = ok ] || fail "the held connection ($hold_peer) no longer echoes after restoring the config: $ans"
hold_quit
note "config restored and reloaded: 7010 gone, the held connection still echoed"
ok

# ---- step 6: the journal ----
step 6 "journalctl: the transitions of step 3's connections with all fields; -x shows the catalog"
transitions_ok() {
        ct journalctl --no-pager -u tcpedud TCPEDU_EVENT=transition -o json >"$run/transitions.json" 2>&1 &&
                tr_out=$(ct python3 "$client" transitions - "${peers[@]}" <"$run/transitions.json" 2>&1)
}
wait_until 15 transitions_ok || fail "$tr_out"
while read -r l; do note "$l"; done <<<"$tr_out"
subject=$(ct journalctl --dump-catalog "$MID_TRANSITION" 2>/dev/null | sed -n 's/^Subject: //p' | head -n1)
[ -n "$subject" ] || fail "the journal catalog has no entry for $MID_TRANSITION"
# journalctl -x fills in the catalog's @FIELD@ references with the entry's fields.
subject_re=$(sed -e 's/[][\.*^$+?(){}|/]/\\&/g' -e 's/@[A-Za-z0-9_]*@/.+/g' <<<"$subject")
out=$(ct journalctl --no-pager -x -u tcpedud TCPEDU_EVENT=transition -n 3 2>&1)
grep -Eq "Subject: $subject_re" <<<"$out" || fail "journalctl -x -u tcpedud does not show the catalog's 'Subject: $subject': $out"
note "journalctl -x: $(grep -E "Subject: $subject_re" <<<"$out" | head -n1 | sed 's/^[^A-Za-z]*//')"
ok

# ---- step 7: a crash is restarted ----
step 7 "kill -9 of the main process: systemd restarts tcpedud and the servers answer"
old_pid=$(ct systemctl show -p MainPID --value tcpedud)
restarts=$(ct systemctl show -p NRestarts --value tcpedud)
[ -n "$old_pid" ] && [ "$old_pid" != 0 ] || fail "no MainPID for tcpedud"
ct kill -9 "$old_pid" || fail "kill -9 $old_pid failed"
restarted() {
        new_pid=$(ct systemctl show -p MainPID --value tcpedud)
        [ -n "$new_pid" ] && [ "$new_pid" != 0 ] && [ "$new_pid" != "$old_pid" ] && [ "$(ct systemctl is-active tcpedud)" = active ]
}
wait_until 30 restarted || fail "tcpedud was not restarted within 30 s (MainPID $new_pid, $(ct systemctl is-active tcpedud))"
new_restarts=$(ct systemctl show -p NRestarts --value tcpedud)
[ "$new_restarts" -gt "$restarts" ] || fail "NRestarts did not grow ($restarts -> $new_restarts)"
out=$(ct python3 "$client" echo 7007 "after the crash" 2>&1) || fail "echo does not answer after the restart: $out"
out=$(ct python3 "$client" enhanced 7008 2>&1) || fail "enhanced does not answer after the restart: $out"
out=$(ct python3 "$client" chat 7009 systest2 2>&1) || fail "chat does not answer after the restart: $out"
note "MainPID $old_pid killed, restarted as $new_pid (NRestarts $restarts -> $new_restarts); echo, enhanced, chat answer"
ok

# ---- step 8: socket activation ----
step 8 "socket activation: with tcpedud stopped and tcpedud.socket enabled, tcpeductl status starts it"
out=$(ct systemctl stop tcpedud 2>&1) || fail "systemctl stop tcpedud failed: $out"
out=$(ct systemctl enable --now tcpedud.socket 2>&1) || fail "systemctl enable --now tcpedud.socket failed: $out"
state=$(ct systemctl is-active tcpedud)
[ "$state" = inactive ] || fail "tcpedud is '$state' after systemctl stop"
state=$(ct systemctl is-active tcpedud.socket)
[ "$state" = active ] || fail "tcpedud.socket is '$state', not active"
out=$(ct tcpeductl status 2>&1) || fail "tcpeductl status did not start tcpedud through the socket (exit $?): $out"
state=$(ct systemctl is-active tcpedud)
[ "$state" = active ] || fail "after tcpeductl status through the socket tcpedud is '$state'"
out=$(ct python3 "$client" echo 7007 "activated" 2>&1) || fail "echo does not answer after socket activation: $out"
note "tcpedud $(ct systemctl show -p MainPID --value tcpedud) started by a connection to $sock_path (TriggeredBy: $(ct systemctl show -p TriggeredBy --value tcpedud))"
ok

# ---- step 9: a clean stop ----
step 9 "systemctl stop tcpedud: exit status 0, result success; an open connection gets FIN, not RST"
hold 7007
[ "$(hold_ask "ping before stop")" = ok ] || fail "the held echo connection does not echo before the stop"
# The client waits for the end of the connection during the stop, and closes its side at EOF as
# clients do; the daemon then has both FINs and exits without resetting anything.
hold_send "eof 60"
t0=$SECONDS
out=$(ct systemctl stop tcpedud 2>&1) || fail "systemctl stop tcpedud failed: $out"
t_stop=$((SECONDS - t0))
ans=$(hold_read 15)
[ "$ans" = eof ] || fail "the connection from $hold_peer open during the stop read '$ans', want eof (FIN)"
hold_quit
show=$(ct systemctl show -p ExecMainStatus -p ExecMainCode -p Result -p ActiveState tcpedud)
grep -qx ExecMainStatus=0 <<<"$show" && grep -qx Result=success <<<"$show" && grep -qx ActiveState=inactive <<<"$show" ||
        fail "after systemctl stop: $(tr '\n' ' ' <<<"$show")"
note "systemctl stop took about ${t_stop}s; $(tr '\n' ' ' <<<"$show")"
note "the connection from $hold_peer read EOF: the daemon closed it with FIN"
# The daemon's side of it: closed because it stopped, not reset.
reason=$(ct journalctl --no-pager -u tcpedud TCPEDU_EVENT=disconnect TCPEDU_PEER="$hold_peer" -o json |
        ct python3 -c 'import json, sys; print(" | ".join(json.loads(l).get("TCPEDU_REASON", "?") for l in sys.stdin if l.strip()))')
[ "$reason" = "daemon stopping" ] || fail "the daemon's disconnect entry for $hold_peer gives TCPEDU_REASON '$reason', want 'daemon stopping'"
note "journal: $(ct journalctl --no-pager -u tcpedud TCPEDU_EVENT=disconnect TCPEDU_PEER="$hold_peer" -o cat)"
ok

echo "all steps passed"
