#!/usr/bin/env bash
# Run by .ci/run and the ci workflow (or sourced, for its functions): leave dockerd running and
# rootful podman usable on a fresh Debian machine, as root, without systemd (CI machines boot a
# minimal init: nothing starts services or mounts cgroups for the engines).

# Both engines need the cgroup controllers mounted; Debian's docker.io init script does this
# with cgroupfs-mount, which --no-install-recommends leaves out and which no init runs here.
ensure_cgroups() {
    if [[ -e /sys/fs/cgroup/cgroup.controllers ]] || mountpoint -q /sys/fs/cgroup/memory 2>/dev/null; then
        return 0
    fi
    echo "engines: mounting cgroup v1 controllers"
    mountpoint -q /sys/fs/cgroup || mount -t tmpfs -o uid=0,gid=0,mode=0755 cgroup /sys/fs/cgroup
    local sys
    while read -r sys; do
        mkdir -p "/sys/fs/cgroup/$sys"
        mountpoint -q "/sys/fs/cgroup/$sys" || mount -n -t cgroup -o "$sys" cgroup "/sys/fs/cgroup/$sys" ||
            rmdir "/sys/fs/cgroup/$sys"
    done < <(awk '!/^#/ { if ($4 == 1) print $1 }' /proc/cgroups)
}

# Some machines boot with a hybrid layout: cgroup v1 controllers, plus cgroup2 at
# /sys/fs/cgroup/unified offering the controllers no v1 hierarchy took (hugetlb). crun, podman's
# runtime, then refuses every container ("cgroups in hybrid mode not supported, drop all
# controllers from cgroupv2"). Binding those controllers to v1 hierarchies of their own leaves
# cgroup2 with none, which crun accepts; Docker's runc is content either way.
settle_hybrid_cgroups() {
    local unified=/sys/fs/cgroup/unified controller controllers=()
    [[ -r "$unified/cgroup.controllers" ]] || return 0
    read -ra controllers <"$unified/cgroup.controllers" || true
    for controller in "${controllers[@]}"; do
        echo "engines: cgroup2 offers $controller beside the v1 hierarchies; mounting it as v1"
        mkdir -p "/sys/fs/cgroup/$controller"
        mountpoint -q "/sys/fs/cgroup/$controller" ||
            mount -n -t cgroup -o "$controller" cgroup "/sys/fs/cgroup/$controller"
    done
    if [[ -n "$(cat "$unified/cgroup.controllers")" ]]; then
        echo "engines: cgroup2 still offers controllers ($(cat "$unified/cgroup.controllers")): podman's crun will refuse containers" >&2
        return 1
    fi
}

start_dockerd() {
    if docker info >/dev/null 2>&1; then
        return 0
    fi
    echo "engines: starting dockerd (log: /tmp/dockerd.log)"
    nohup dockerd >/tmp/dockerd.log 2>&1 </dev/null &
    local _
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && return 0
        sleep 1
    done
    tail -n 30 /tmp/dockerd.log >&2
    echo "engines: dockerd did not start within 60 s (log above)" >&2
    return 1
}

# Without systemd, podman must use cgroupfs and log events to a file; pinned so that a
# libpod.conf or a changed default cannot make it reach for systemd or journald.
configure_podman() {
    if [[ ! -e /etc/containers/containers.conf ]]; then
        mkdir -p /etc/containers
        cat >/etc/containers/containers.conf <<'EOF'
# Written by the ai-proxy CI (.ci/engines.sh): rootful podman on a host without systemd.
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
    fi
    if ! podman info >/dev/null 2>&1; then
        # overlay cannot work on some root filesystems (e.g. overlay on overlay); vfs always does.
        echo "engines: podman info failed with the default storage; switching to the vfs driver"
        podman info 2>&1 | tail -n 5 >&2 || true
        if [[ ! -e /etc/containers/storage.conf ]]; then
            printf '[storage]\ndriver = "vfs"\nrunroot = "/run/containers/storage"\ngraphroot = "/var/lib/containers/storage"\n' \
                >/etc/containers/storage.conf
        fi
    fi
    podman info >/dev/null || { echo "engines: podman is not usable (podman info above)" >&2; return 1; }
}

start_engines() {
    ensure_cgroups
    settle_hybrid_cgroups
    start_dockerd
    configure_podman
    echo "engines: docker $(docker info --format '{{.ServerVersion}}'), podman $(podman info --format '{{.Version.Version}}')"
}

# Run as a script: start them.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    start_engines
fi
