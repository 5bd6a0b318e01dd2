# Shared by the installer's end-to-end suites. Every test gets its own container/image name,
# build and configuration directories and TMPDIR, so tests never collide with each other or
# with a real install, and teardown removes whatever a test left on the engine.
#
# Needs: ENGINE (docker|podman) and AI_PROXY_PKG (absolute directory with installer.sh,
# ai-proxy-release.tar.gz and its .sha256), as `cargo xtask test` sets them.

bats_require_minimum_version 1.5.0

: "${ENGINE:?set ENGINE=docker or ENGINE=podman}"
: "${AI_PROXY_PKG:?set AI_PROXY_PKG to the absolute path of the directory holding installer.sh}"

# The installer's exit codes, read from the rendered installer's EX_* constants (rendered from
# xtask/src/release/exit_codes.rs), so the suites and the installer cannot disagree.
eval "$(grep -E '^readonly EX_[A-Z]+=[0-9]+$' "$AI_PROXY_PKG/installer.sh")"
[[ -n "${EX_FOREIGN:-}" && -n "${EX_LOCK:-}" ]] || { echo "no EX_* constants in $AI_PROXY_PKG/installer.sh" >&2; exit 1; }
readonly LABEL_KEY=io.github.ai-proxy.installer

readonly APP_GID=1001
readonly REPO_ROOT="$(cd "$BATS_TEST_DIRNAME/../../.." && pwd)"
readonly UNPRIVILEGED_USER=ai-proxy-test

# ---------------------------------------------------------------------------- per-test names

# unique_names [SHARED]: the AI_PROXY_* overrides of this test, or with SHARED those of the
# install that the tests of one file share.
unique_names() {
    local tag="${BATS_ROOT_PID:-$$}-${1:-$BATS_SUITE_TEST_NUMBER}" base="$BATS_FILE_TMPDIR"
    [[ -n "${1:-}" ]] || base="$BATS_TEST_TMPDIR"
    export AI_PROXY_NAME="aipt-$tag"
    export AI_PROXY_BUILD_DIR="$base/build-$tag"
    export AI_PROXY_CONFIG_DIR="$base/config-$tag"
    export INSTALL_TMPDIR="$base/tmp-$tag"
    LOCK_DIR=/run/lock/ai-proxy
    mkdir -p "$INSTALL_TMPDIR"
    PKG="$AI_PROXY_PKG"
}

# free_port: an ephemeral port nothing listens on right now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# hold_port PORT: another program listens on PORT until the test ends.
hold_port() {
    python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(8); time.sleep(600)' "$1" >/dev/null 2>&1 3>&- &
    # (python's own sleep bounds it: 600 s)
    HELD_PIDS+=("$!")
    local i
    for i in $(seq 1 50); do
        ss -ltnH "( sport = :$1 )" | grep -q . && return 0
        sleep 0.1
    done
    echo "could not hold port $1" >&2
    return 1
}
HELD_PIDS=()
CLEANUP_DIRS=()

# ---------------------------------------------------------------------------- a shared install

# base_install_file: (setup_file) the running install the tests of one file start from, on
# BASE_PORT; its output and status are kept for base_install_ready to check.
base_install_file() {
    unique_names base
    export BASE_PORT
    BASE_PORT=$(free_port)
    installer --port "$BASE_PORT" >"$BATS_FILE_TMPDIR/base.out" 2>&1
    echo $? >"$BATS_FILE_TMPDIR/base.status"
}

# base_install_ready: (setup) the shared install is healthy; BEFORE (host_state), OLD_ID and
# OLD_STARTED record it as each test finds it.
base_install_ready() {
    unique_names base
    [ "$(cat "$BATS_FILE_TMPDIR/base.status")" -eq 0 ] || { cat "$BATS_FILE_TMPDIR/base.out"; return 1; }
    wait_healthy "$AI_PROXY_NAME" "$BASE_PORT"
    BEFORE=$(host_state)
    OLD_ID=$(container_field "$AI_PROXY_NAME" '{{.Id}}')
    OLD_STARTED=$(container_field "$AI_PROXY_NAME" '{{.State.StartedAt}}')
}

# never_stopped: the shared install's container is the same one, started at the same moment (a
# stop and start would leave RestartCount at 0 but move StartedAt).
never_stopped() {
    [ "$(container_field "$AI_PROXY_NAME" '{{.Id}}')" = "$OLD_ID" ]
    [ "$(container_field "$AI_PROXY_NAME" '{{.State.StartedAt}}')" = "$OLD_STARTED" ] ||
        { echo "the old container was restarted: StartedAt $OLD_STARTED -> $(container_field "$AI_PROXY_NAME" '{{.State.StartedAt}}')"; return 1; }
}

# ---------------------------------------------------------------------------- running it

# installer [ARGS...]: the installer under test with this test's overrides; stdin is /dev/null
# unless the caller redirects it. Bounded so a hang fails the test instead of the suite.
installer() {
    TMPDIR="$INSTALL_TMPDIR" timeout 300 "${INSTALLER:-$PKG/installer.sh}" --engine "$ENGINE" "$@"
}

# installer_in_background OUTFILE [ARGS...]: starts the installer itself (not a wrapper, so a
# signal reaches it) in the background, as the leader of its own process group (so a test can
# signal the group, as a terminal's Ctrl-C does); INSTALLER_PID is its process. A watchdog kills
# it after 300 s, so a hang fails the test instead of the suite.
installer_in_background() {
    local out=$1
    shift
    (exec setsid env TMPDIR="$INSTALL_TMPDIR" "${INSTALLER:-$PKG/installer.sh}" --engine "$ENGINE" "$@" >"$out" 2>&1 </dev/null 3>&-) &
    INSTALLER_PID=$!
    watchdog "$INSTALLER_PID"
}

# watchdog PID [SECONDS]: SIGKILL for PID if it still runs after SECONDS (300).
watchdog() {
    (timeout "${2:-300}" tail --pid="$1" -f /dev/null >/dev/null 2>&1 || kill -KILL "$1" 2>/dev/null) 3>&- &
}

# wait_exit PID: sets CODE to its exit status (not a command substitution: a subshell cannot
# wait for this shell's children).
wait_exit() {
    CODE=0
    wait "$1" || CODE=$?
}

# installer_with_input TEXT [ARGS...]: TEXT is what the admin types.
installer_with_input() {
    local input=$1
    shift
    printf '%b' "$input" | installer "$@"
}

# ---------------------------------------------------------------------------- engine facts

container_field() {
    "$ENGINE" container inspect --format "$2" "$1"
}

container_running() {
    [[ "$(container_field "$1" '{{.State.Status}}' 2>/dev/null)" == running ]]
}

# health_of NAME: podman without systemd only updates health when asked.
health_of() {
    if [[ "$ENGINE" == podman ]]; then
        podman healthcheck run "$1" >/dev/null 2>&1 || true
    fi
    container_field "$1" '{{.State.Health.Status}}'
}

ping_port() {
    curl -fsS -m 2 "http://127.0.0.1:$1/ping"
}

# wait_healthy NAME PORT: up to 60 s for health and /ping, as an admin would check.
wait_healthy() {
    local i
    for i in $(seq 1 120); do
        if [[ "$(health_of "$1")" == healthy ]] && ping_port "$2" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.5
    done
    echo "container $1 not healthy on port $2: $(health_of "$1")" >&2
    "$ENGINE" logs --tail 20 "$1" >&2 || true
    return 1
}

# image_ids: every top-level image of this test's install, tagged or not (an untagged one left
# by a killed run too), found both by our label and by repository name (also one a missing
# label would hide); full ids. Intermediate layers (`images -a`; Podman labels them too) go
# with the image they belong to.
image_ids() {
    {
        "$ENGINE" images -q --no-trunc --filter "label=$LABEL_KEY=$AI_PROXY_NAME"
        "$ENGINE" images --no-trunc --format '{{.ID}} {{.Repository}}' |
            awk -v n="$AI_PROXY_NAME" '{ r = $2; sub(/^localhost\//, "", r); if (r == n) print $1 }'
    } 2>/dev/null | sed 's/^sha256://' | sort -u
}

# labelled_containers: every container carrying this test's label, whatever its name.
labelled_containers() {
    "$ENGINE" ps -a --no-trunc --filter "label=$LABEL_KEY=$AI_PROXY_NAME" --format '{{.ID}} {{.Names}}' 2>/dev/null | sort
}

# host_state: everything an install can change, to compare before and after a failure: the
# containers (id, state, image), the images, every configuration file (mode, owner, inode,
# content), the build directory and the installer's temporary files.
host_state() {
    local n
    echo "containers:"
    for n in "$AI_PROXY_NAME" "$AI_PROXY_NAME-new" "$AI_PROXY_NAME-previous"; do
        container_field "$n" "$n {{.Id}} {{.State.Status}} {{.Image}}" 2>/dev/null || true
    done
    echo "labelled containers:"
    labelled_containers
    echo "images:"
    image_ids
    echo "tag $AI_PROXY_NAME:$(pkg_version) -> $("$ENGINE" image inspect --format '{{.Id}}' "$AI_PROXY_NAME:$(pkg_version)" 2>/dev/null || echo none)"
    echo "config:"
    if [[ -e "$AI_PROXY_CONFIG_DIR" ]]; then
        (cd "$AI_PROXY_CONFIG_DIR" && find . -printf '%p %m %u:%g %i\n' | sort && find . -type f -exec sha256sum {} + | sort)
    else
        echo "absent"
    fi
    echo "build dir: $([[ -e "$AI_PROXY_BUILD_DIR" ]] && echo present || echo absent)"
    echo "temporary files: $(find "$INSTALL_TMPDIR" -mindepth 1 | wc -l)"
    echo "journal: $([[ -e "$LOCK_DIR/$AI_PROXY_NAME.journal" ]] && echo present || echo absent)"
}

# assert_unchanged BEFORE: the host is as BEFORE (a host_state) says.
assert_unchanged() {
    local after
    after=$(host_state)
    if [[ "$1" != "$after" ]]; then
        echo "the host changed:" >&2
        diff <(echo "$1") <(echo "$after") >&2 || true
        return 1
    fi
}

pkg_version() {
    sed -n 's/^readonly VERSION="\(.*\)"$/\1/p' "$AI_PROXY_PKG/installer.sh"
}

# ---------------------------------------------------------------------------- packages

# copy_pkg DIR: a private copy of the release, to damage or to run from another place.
copy_pkg() {
    mkdir -p "$1"
    cp "$AI_PROXY_PKG/installer.sh" "$AI_PROXY_PKG/ai-proxy-release.tar.gz" "$1/"
    [[ ! -f "$AI_PROXY_PKG/ai-proxy-release.tar.gz.sha256" ]] || cp "$AI_PROXY_PKG/ai-proxy-release.tar.gz.sha256" "$1/"
}

# variant_pkg DIR KIND: a release whose archive is changed as KIND says, with an installer
# carrying the new archive's digest (as a tampered release with a matching installer would be),
# so that what is tested is the check for KIND, not the checksum.
variant_pkg() {
    local dir=$1 kind=$2
    mkdir -p "$dir"
    python3 - "$AI_PROXY_PKG/ai-proxy-release.tar.gz" "$dir/ai-proxy-release.tar.gz" "$kind" <<'EOF'
import io, sys, tarfile
src, dst, kind = sys.argv[1:]
with tarfile.open(src, "r:gz") as t:
    members = [(m, t.extractfile(m).read()) for m in t.getmembers()]
def add(out, info, data=None):
    out.addfile(info, io.BytesIO(data) if data is not None else None)
with tarfile.open(dst, "w:gz", format=tarfile.GNU_FORMAT) as out:
    for info, data in members:
        name = info.name.removeprefix("./")
        if kind == "symlink" and name == "LICENSE":
            link = tarfile.TarInfo(info.name); link.type = tarfile.SYMTYPE; link.linkname = "/etc/shadow"
            add(out, link); continue
        if kind == "hardlink" and name == "LICENSE":
            link = tarfile.TarInfo(info.name); link.type = tarfile.LNKTYPE; link.linkname = "README.md"
            add(out, link); continue
        if kind == "missing" and name == "LICENSE":
            continue
        if name == "Dockerfile":
            text = data.decode()
            if kind == "no-expose":
                text = "\n".join(l for l in text.splitlines() if not l.startswith("EXPOSE ")) + "\n"
            if kind == "bad-cmd":
                # A configuration directory the proxy cannot read: it exits at start, as with
                # any configuration it rejects, while check-config on /app/config passes.
                text = text.replace('"/app/config"]', '"/app/missing"]')
                assert "/app/missing" in text
            data = text.encode(); info.size = len(data)
        add(out, info, data)
    if kind == "extra":
        info = tarfile.TarInfo("evil.sh"); data = b"#!/bin/sh\n"; info.size = len(data); info.mode = 0o755
        add(out, info, data)
    if kind == "dotdot":
        info = tarfile.TarInfo("../escaped"); data = b"x\n"; info.size = len(data)
        add(out, info, data)
    if kind == "device":
        info = tarfile.TarInfo("null"); info.type = tarfile.CHRTYPE; info.devmajor = 1; info.devminor = 3
        add(out, info)
EOF
    local digest
    digest=$(sha256sum "$dir/ai-proxy-release.tar.gz" | cut -d' ' -f1)
    sed "s/^readonly ARCHIVE_SHA256=\".*\"\$/readonly ARCHIVE_SHA256=\"$digest\"/" "$AI_PROXY_PKG/installer.sh" >"$dir/installer.sh"
    chmod 0755 "$dir/installer.sh"
    grep -q "$digest" "$dir/installer.sh"
}

# ---------------------------------------------------------------------------- engine wrapper

# pausing_engine DIR SUBCOMMAND [before|after]: puts on PATH a wrapper of the engine that, at
# the first `ENGINE SUBCOMMAND` (after it ran, or before it runs), creates DIR/paused and waits
# for DIR/release (at most 300 s), so a test can send a signal at a known point of the install.
pausing_engine() {
    pausing_command "$1" "$ENGINE" "$2" "${3:-after}"
}

# pausing_command DIR COMMAND FIRST-ARGUMENT before|after: the same for any command on PATH.
pausing_command() {
    local dir=$1 name=$2 arg=$3 when=$4 real
    real=$(command -v "$name")
    mkdir -p "$dir/bin"
    cat >"$dir/bin/$name" <<EOF
#!/usr/bin/env bash
pause() {
    if [[ "\$1" == "$arg" ]] && mkdir "$dir/paused" 2>/dev/null; then
        for _ in \$(seq 1 6000); do [[ -e "$dir/release" ]] && break; sleep 0.05; done
    fi
}
[[ "$when" == after ]] || pause "\$@"
"$real" "\$@"
rc=\$?
[[ "$when" == before ]] || pause "\$@"
exit \$rc
EOF
    chmod 0755 "$dir/bin/$name"
}

# wait_for_file FILE: up to 120 s.
wait_for_file() {
    local i
    for i in $(seq 1 1200); do
        [[ -e "$1" ]] && return 0
        sleep 0.1
    done
    echo "timed out waiting for $1" >&2
    return 1
}

# ---------------------------------------------------------------------------- cleanup

remove_test_objects() {
    local n id
    for n in "$AI_PROXY_NAME" "$AI_PROXY_NAME-new" "$AI_PROXY_NAME-previous" $(labelled_containers | awk '{print $1}'); do
        "$ENGINE" rm -f "$n" >/dev/null 2>&1 || true
    done
    for id in $(image_ids) "$AI_PROXY_NAME-foreign:1"; do
        "$ENGINE" rmi -f "$id" >/dev/null 2>&1 || true
    done
    for id in "${HELD_PIDS[@]}"; do
        kill "$id" 2>/dev/null || true
    done
    HELD_PIDS=()
    for id in "${CLEANUP_DIRS[@]}"; do
        rm -rf "$id"
    done
    CLEANUP_DIRS=()
    rm -f "$LOCK_DIR/$AI_PROXY_NAME".*
}
