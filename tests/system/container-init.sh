#!/bin/bash
# The first process of the system test's container: unshare(1) starts it as PID 1 of new PID, mount,
# network, UTS, IPC and cgroup namespaces. It builds a root on an overlay of the host's / whose
# writable layer is a tmpfs, so nothing written inside reaches the host (its /tmp included), and
# execs systemd there. Usage: container-init.sh DIR [PATH...]
#   DIR   an empty directory: the tmpfs is mounted on it, in this mount namespace only;
#   PATH  directories to show inside at the same place (the source and build trees), each through
#         an overlay of its own: the overlay of / shows only the root file system, and /tmp is new.
set -euo pipefail
base=$1
shift
r=$base/root

# Nothing mounted from here on propagates to the host.
mount --make-rprivate /
mount -t tmpfs -o mode=0755 tcpedu-systest "$base"
mkdir "$base/upper" "$base/work" "$r"
mount -t overlay -o "lowerdir=/,upperdir=$base/upper,workdir=$base/work" tcpedu-systest "$r"

# /proc of the new PID namespace; its /proc/sys read-only (the kernel's settings are the host's).
mount -t proc -o nosuid,nodev,noexec proc "$r/proc"
mount --bind "$r/proc/sys" "$r/proc/sys"
mount -o remount,bind,ro "$r/proc/sys"
if [ -e "$r/proc/sysrq-trigger" ]; then
        mount --bind "$r/proc/sysrq-trigger" "$r/proc/sysrq-trigger"
        mount -o remount,bind,ro "$r/proc/sysrq-trigger"
fi

# A read-only sysfs of the new network namespace, and cgroup2 rooted at this container's cgroup
# (the cgroup namespace's root), so systemd's cgroups live below the one the test made for it.
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$r/sys"
mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$r/sys/fs/cgroup"

# A private /dev with the harmless devices only: no console, no kmsg, no disks of the host.
mount -t tmpfs -o mode=0755,nosuid dev "$r/dev"
for n in null zero full random urandom tty; do
        touch "$r/dev/$n"
        mount --bind "/dev/$n" "$r/dev/$n"
done
mkdir "$r/dev/pts" "$r/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$r/dev/pts"
ln -s pts/ptmx "$r/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev shm "$r/dev/shm"
ln -s /proc/self/fd "$r/dev/fd"
ln -s /proc/self/fd/0 "$r/dev/stdin"
ln -s /proc/self/fd/1 "$r/dev/stdout"
ln -s /proc/self/fd/2 "$r/dev/stderr"

mount -t tmpfs -o mode=0755,nosuid,nodev run "$r/run"
mount -t tmpfs -o mode=1777,nosuid,nodev tmp "$r/tmp"
# The container's journal starts empty, whatever the host keeps in /var/log/journal.
[ -d "$r/var/log/journal" ] && mount -t tmpfs -o mode=2755,nosuid,nodev journal "$r/var/log/journal"

# Parents before children: a build tree inside the source tree is mounted over the source's overlay.
i=0
while read -r p; do
        [ -n "$p" ] || continue
        i=$((i + 1))
        mkdir -p "$base/t$i/upper" "$base/t$i/work" "$r$p"
        mount -t overlay -o "lowerdir=$p,upperdir=$base/t$i/upper,workdir=$base/t$i/work" tcpedu-systest "$r$p"
done < <(printf '%s\n' "$@" | awk '{ print length($0) "\t" $0 }' | sort -n | cut -f2-)

cd "$r"
pivot_root . .
umount -l .
cd /

# container= tells systemd (and units' ConditionVirtualization=) that it runs in a container.
exec env -i container=tcpedu-systest PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        /lib/systemd/systemd --system --show-status=no --log-target=console </dev/null
