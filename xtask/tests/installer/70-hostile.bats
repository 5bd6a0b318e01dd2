#!/usr/bin/env bats
# Issue 11, items 3 and 5-8 and 10: a local user who plants or swaps the build path, a foreign
# container or image with our name, a spy reading every process's argv and environment, an
# unsafe configuration directory, the podman-docker shim, an old shell, and --purge on a
# directory that is not ours. Each case checks its exit code, that the message names the
# problem, and that nothing else on the host changed.

load helpers

setup() {
    unique_names
    BEFORE=$(host_state)
    id "$UNPRIVILEGED_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$UNPRIVILEGED_USER"
}

teardown() {
    remove_test_objects
}

as_user() {
    setpriv --reuid="$UNPRIVILEGED_USER" --regid="$UNPRIVILEGED_USER" --init-groups "$@"
}

# ---------------------------------------------------------------------------- item 3: build path

@test "item 3: a build path planted by another user (a directory with a file, a link, a 0777 directory of root's) is refused, naming it" {
    local shared
    shared=$(mktemp -d /tmp/aipt-shared.XXXXXX)
    CLEANUP_DIRS+=("$shared")
    chmod 1777 "$shared"
    export AI_PROXY_BUILD_DIR="$shared/ai-proxy"
    BEFORE=$(host_state)

    as_user mkdir "$AI_PROXY_BUILD_DIR"
    as_user touch "$AI_PROXY_BUILD_DIR/x"
    run installer --port "$(free_port)"
    [ "$status" -eq "$EX_EXTRACT" ] || { echo "$output"; return 1; }
    [[ "$output" == *"$AI_PROXY_BUILD_DIR exists and is not a leftover of this installer: it is a directory owned by $UNPRIVILEGED_USER"*"Nothing was changed"* ]]
    [ -e "$AI_PROXY_BUILD_DIR/x" ]
    rm -rf "$AI_PROXY_BUILD_DIR"

    as_user ln -s "$AI_PROXY_CONFIG_DIR" "$AI_PROXY_BUILD_DIR"
    run installer --port "$(free_port)"
    [ "$status" -eq "$EX_EXTRACT" ]
    [[ "$output" == *"it is a symbolic link owned by $UNPRIVILEGED_USER"* ]]
    [ -L "$AI_PROXY_BUILD_DIR" ]
    rm -f "$AI_PROXY_BUILD_DIR"

    mkdir -m 0777 "$AI_PROXY_BUILD_DIR"
    run installer --port "$(free_port)"
    [ "$status" -eq "$EX_EXTRACT" ]
    [[ "$output" == *"directory owned by root (uid 0), mode 777"* ]]
    rmdir "$AI_PROXY_BUILD_DIR"
    assert_unchanged "$BEFORE"
}

@test "item 3: a root-owned 0700 leftover of a killed run is recognised, emptied of our files and replaced" {
    mkdir -m 0700 "$AI_PROXY_BUILD_DIR"
    tar -xzf "$PKG/ai-proxy-release.tar.gz" -C "$AI_PROXY_BUILD_DIR"
    touch "$AI_PROXY_BUILD_DIR/.Dockerfile.AbC123"
    local port
    port=$(free_port)
    run installer --port "$port"
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
    [[ "$output" == *"removed the build directory an interrupted run left"* ]]
    [ ! -e "$AI_PROXY_BUILD_DIR" ]
    wait_healthy "$AI_PROXY_NAME" "$port"
}

# The race of issue 11: a user swaps the build path for a link to the configuration directory
# (renameat2 RENAME_EXCHANGE in a loop) while the installer runs. fs.protected_symlinks is one
# global sysctl (a mount namespace does not scope it) and these tests never change it; it only
# matters when a link is followed, and the installer follows none there. Two parents, both
# controlled by the test: one world-writable WITHOUT the sticky bit (where the kernel protects
# nothing: any user may rename root's entries, so no path there can be trusted: refused at
# once), and one 1777 like /tmp, where the attacker runs for 5 bounded installs.
@test "item 3: the build path swapped for a link to the configuration during the run: the admin's files are never touched (5 bounded tries)" {
    local open_dir
    open_dir=$(mktemp -d /tmp/aipt-open.XXXXXX)
    CLEANUP_DIRS+=("$open_dir")
    chmod 0777 "$open_dir"
    AI_PROXY_BUILD_DIR="$open_dir/ai-proxy" run installer --port "$(free_port)"
    [ "$status" -eq "$EX_EXTRACT" ] || { echo "$output"; return 1; }
    [[ "$output" == *"parent $open_dir is owned by root (uid 0), mode 777: another user could rename"*"Nothing was changed"* ]]
    [ -z "$(ls -A "$open_dir")" ]
    assert_unchanged "$BEFORE"

    local shared port try code refused=0 installed=0 attempts=0 denied=0 swaps=0
    shared=$(mktemp -d /tmp/aipt-race.XXXXXX)
    CLEANUP_DIRS+=("$shared")
    chmod 1777 "$shared"
    export AI_PROXY_BUILD_DIR="$shared/ai-proxy"
    port=$(free_port)
    run installer --port "$port"
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
    printf '\n# edited by the admin\n' >>"$AI_PROXY_CONFIG_DIR/provider-config.yaml"
    local config_before
    config_before=$(cd "$AI_PROXY_CONFIG_DIR" && find . -printf '%p %m %u:%g %i\n' | sort && sha256sum .env provider-config.yaml)
    for try in 1 2 3 4 5; do
        rm -f "$shared/stop" "$shared/counts"
        as_user ln -s "$AI_PROXY_CONFIG_DIR" "$shared/decoy"
        as_user timeout 120 python3 - "$shared" <<'EOF' 3>&- &
import ctypes, errno, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
RENAME_EXCHANGE = 2
AT_FDCWD = -100
d = sys.argv[1]
a, b = (os.path.join(d, n).encode() for n in ("ai-proxy", "decoy"))
stop = os.path.join(d, "stop")
attempts = denied = swaps = 0
deadline = time.time() + 110
while time.time() < deadline and not os.path.exists(stop):
    for _ in range(200):
        attempts += 1
        if libc.renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) == 0:
            swaps += 1
        elif ctypes.get_errno() == errno.EPERM:
            denied += 1
with open(os.path.join(d, "counts"), "w") as f:
    f.write(f"{attempts} {denied} {swaps}\n")
EOF
        local attacker=$! n_attempts n_denied n_swaps
        run installer --port "$port" --yes
        code=$status
        touch "$shared/stop"
        wait "$attacker" || true
        read -r n_attempts n_denied n_swaps <"$shared/counts"
        attempts=$((attempts + n_attempts)) denied=$((denied + n_denied)) swaps=$((swaps + n_swaps))
        if [ "$code" -eq 0 ]; then
            installed=$((installed + 1))
        else
            [ "$code" -eq "$EX_EXTRACT" ] || { echo "try $try: exit $code: $output"; return 1; }
            refused=$((refused + 1))
        fi
        # The admin's configuration, byte for byte, inode for inode; nothing of ours beside it.
        [ "$(cd "$AI_PROXY_CONFIG_DIR" && find . -printf '%p %m %u:%g %i\n' | sort && sha256sum .env provider-config.yaml)" = "$config_before" ] ||
            { echo "try $try changed the configuration directory"; ls -la "$AI_PROXY_CONFIG_DIR"; return 1; }
        wait_healthy "$AI_PROXY_NAME" "$port"
        [ ! -e "$AI_PROXY_BUILD_DIR" ]
        rm -f "$shared/decoy"
    done
    echo "# build-path race (${ENGINE}): $attempts exchange attempts over 5 installs, $denied refused by the kernel while our directory existed, $swaps succeeded; $installed installed, $refused refused" >&3
    # The attacker really raced against the live directory, and never won.
    [ "$denied" -gt 0 ]
    [ "$swaps" -eq 0 ]
    [ "$installed" -eq 5 ]
}

# ---------------------------------------------------------------------------- item 5: foreign

# foreign_image REF [LABEL]: a tiny image that this installer did not build.
foreign_image() {
    local ctx="$BATS_TEST_TMPDIR/foreign"
    mkdir -p "$ctx"
    printf 'someone else\n' >"$ctx/x"
    printf 'FROM scratch\nCOPY x /x\nLABEL owner=someone-else\n%s\n' "${2:+LABEL $2}" >"$ctx/Dockerfile"
    "$ENGINE" build -q -t "$1" "$ctx" >/dev/null
}

@test "item 5: a stopped container with our name but not our label is never replaced or removed, by install or by --uninstall" {
    foreign_image "$AI_PROXY_NAME-foreign:1"
    "$ENGINE" create --name "$AI_PROXY_NAME" "$AI_PROXY_NAME-foreign:1" /x >/dev/null
    BEFORE=$(host_state)
    local id
    id=$(container_field "$AI_PROXY_NAME" '{{.Id}}')
    run installer --port "$(free_port)" --yes
    [ "$status" -eq "$EX_FOREIGN" ] || { echo "$output"; return 1; }
    [[ "$output" == *"a container named '$AI_PROXY_NAME' exists but this installer did not create it"*"AI_PROXY_NAME"* ]]
    run installer --uninstall --purge --yes
    [ "$status" -eq "$EX_FOREIGN" ] || { echo "$output"; return 1; }
    [ "$(container_field "$AI_PROXY_NAME" '{{.Id}}')" = "$id" ]
    assert_unchanged "$BEFORE"
    "$ENGINE" rm -f "$AI_PROXY_NAME" >/dev/null
    "$ENGINE" rmi -f "$AI_PROXY_NAME-foreign:1" >/dev/null
}

@test "item 5: another install's label on our -previous name, and an unlabelled image with our name and version, are refused" {
    foreign_image "$AI_PROXY_NAME-foreign:1" "$LABEL_KEY=someone-else"
    "$ENGINE" create --name "$AI_PROXY_NAME-previous" "$AI_PROXY_NAME-foreign:1" /x >/dev/null
    BEFORE=$(host_state)
    run installer --port "$(free_port)"
    [ "$status" -eq "$EX_FOREIGN" ]
    [[ "$output" == *"'$AI_PROXY_NAME-previous'"*"label $LABEL_KEY=someone-else"* ]]
    assert_unchanged "$BEFORE"
    "$ENGINE" rm -f "$AI_PROXY_NAME-previous" >/dev/null
    "$ENGINE" rmi -f "$AI_PROXY_NAME-foreign:1" >/dev/null

    foreign_image "$AI_PROXY_NAME:$(pkg_version)"
    BEFORE=$(host_state)
    run installer --port "$(free_port)"
    [ "$status" -eq "$EX_FOREIGN" ]
    [[ "$output" == *"an image named '$AI_PROXY_NAME:$(pkg_version)' exists but this installer did not build it"* ]]
    run installer --uninstall --yes
    [ "$status" -eq "$EX_FOREIGN" ]
    assert_unchanged "$BEFORE"
}

# ---------------------------------------------------------------------------- item 6: token

# Every external command the installer runs is made to live at least 0.2 s (a wrapper that
# sleeps, then execs the real one with the same argv), so a spy sweeping /proc every few ms
# sees every process's argv and environment; the canary proves it would have seen the token.
@test "item 6: a spy reading every /proc/*/cmdline and environ during a fresh install never sees the token" {
    local slow="$BATS_TEST_TMPDIR/slow" f canary
    mkdir -p "$slow"
    for f in /usr/local/bin/* /usr/bin/* /bin/* /usr/sbin/* /sbin/*; do
        [[ -x "$f" && ! -d "$f" && ! -e "$slow/${f##*/}" ]] || continue
        printf '#!/bin/bash\n/usr/bin/sleep 0.2\nexec %q "$@"\n' "$f" >"$slow/${f##*/}"
    done
    chmod 0755 "$slow"/*
    canary="canary-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
    timeout 600 python3 - "$BATS_TEST_TMPDIR/spy" "$BATS_TEST_TMPDIR/stop-spy" <<'EOF' 3>&- &
import os, sys
out, stop = sys.argv[1], sys.argv[2]
seen = set()
me = str(os.getpid())
while not os.path.exists(stop):
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or pid == me:
            continue
        for what in ("cmdline", "environ"):
            try:
                with open(f"/proc/{pid}/{what}", "rb") as f:
                    seen.add(f.read())
            except OSError:
                pass
with open(out, "wb") as f:
    f.write(b"\n".join(v.replace(b"\0", b" ") for v in seen))
EOF
    local spy=$!
    sleep 0.5
    PATH="$slow:$PATH" "$slow/env" true "$canary"
    local port
    port=$(free_port)
    PATH="$slow:$PATH" run installer --port "$port"
    touch "$BATS_TEST_TMPDIR/stop-spy"
    wait "$spy"
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
    local token
    token=$(sed -n 's/^AUTH_TOKEN=//p' "$AI_PROXY_CONFIG_DIR/.env")
    [[ "$token" =~ ^[0-9a-f]{64}$ ]]
    # The spy works: it saw the canary's argv and the installer's own commands.
    grep -qF "$canary" "$BATS_TEST_TMPDIR/spy"
    grep -qF "installer.sh --engine $ENGINE --port $port" "$BATS_TEST_TMPDIR/spy"
    grep -qF "$AI_PROXY_NAME" "$BATS_TEST_TMPDIR/spy"
    echo "# token spy (${ENGINE}): $(wc -l <"$BATS_TEST_TMPDIR/spy") distinct argv/environments seen, token in none" >&3
    run grep -cF "$token" "$BATS_TEST_TMPDIR/spy"
    [ "$output" = 0 ]
    wait_healthy "$AI_PROXY_NAME" "$port"
}

# ---------------------------------------------------------------------------- item 7: config dir

@test "item 7: a configuration directory or file another user could replace, or a link, is refused with the fix" {
    local port
    port=$(free_port)
    mkdir -m 0777 "$AI_PROXY_CONFIG_DIR"
    chown "$UNPRIVILEGED_USER" "$AI_PROXY_CONFIG_DIR"
    BEFORE=$(host_state)
    run installer --port "$port"
    [ "$status" -eq "$EX_CONFIG" ] || { echo "$output"; return 1; }
    [[ "$output" == *"$AI_PROXY_CONFIG_DIR is a directory owned by $UNPRIVILEGED_USER"*"mode 777"*"Fix: chown root:$APP_GID $AI_PROXY_CONFIG_DIR && chmod 0750 $AI_PROXY_CONFIG_DIR"* ]]
    assert_unchanged "$BEFORE"

    chown root:"$APP_GID" "$AI_PROXY_CONFIG_DIR" && chmod 0750 "$AI_PROXY_CONFIG_DIR"
    printf 'PORT=%s\n' "$port" >"$AI_PROXY_CONFIG_DIR/.env"
    chown "$UNPRIVILEGED_USER" "$AI_PROXY_CONFIG_DIR/.env"
    BEFORE=$(host_state)
    run installer --port "$port"
    [ "$status" -eq "$EX_CONFIG" ]
    [[ "$output" == *"$AI_PROXY_CONFIG_DIR/.env is a regular file owned by $UNPRIVILEGED_USER"*"Fix: chown root:$APP_GID $AI_PROXY_CONFIG_DIR/.env && chmod 0640 $AI_PROXY_CONFIG_DIR/.env"* ]]
    assert_unchanged "$BEFORE"

    chown root "$AI_PROXY_CONFIG_DIR/.env" && chmod 0666 "$AI_PROXY_CONFIG_DIR/.env"
    run installer --port "$port"
    [ "$status" -eq "$EX_CONFIG" ]
    [[ "$output" == *"mode 666"* ]]

    rm "$AI_PROXY_CONFIG_DIR/.env"
    ln -s /etc/hostname "$AI_PROXY_CONFIG_DIR/provider-config.yaml"
    BEFORE=$(host_state)
    run installer --port "$port"
    [ "$status" -eq "$EX_CONFIG" ]
    [[ "$output" == *"provider-config.yaml is a symbolic link"* ]]
    assert_unchanged "$BEFORE"
    rm -rf "$AI_PROXY_CONFIG_DIR"

    mkdir -m 0750 "$BATS_TEST_TMPDIR/real"
    ln -s "$BATS_TEST_TMPDIR/real" "$AI_PROXY_CONFIG_DIR"
    run installer --port "$port"
    [ "$status" -eq "$EX_CONFIG" ]
    [[ "$output" == *"$AI_PROXY_CONFIG_DIR is a symbolic link"*"set AI_PROXY_CONFIG_DIR to the real directory"* ]]
    [ -z "$(ls -A "$BATS_TEST_TMPDIR/real")" ]
    rm "$AI_PROXY_CONFIG_DIR"
}

# ---------------------------------------------------------------------------- item 8: shim

@test "item 8: the podman-docker shim is recognised as podman, not reported as an unreachable Docker daemon" {
    command -v podman >/dev/null || { echo "podman is required for this test (the CI installs it with docker)"; return 1; }
    local shim="$BATS_TEST_TMPDIR/shim"
    mkdir -p "$shim"
    # What Debian's podman-docker installs as /usr/bin/docker.
    printf '#!/bin/sh\n[ -e /etc/containers/nodocker ] || echo "Emulate Docker CLI using podman. Create /etc/containers/nodocker to quiet msg." >&2\nexec %s "$@"\n' "$(command -v podman)" >"$shim/docker"
    chmod 0755 "$shim/docker"
    PATH="$shim:$PATH" run env TMPDIR="$INSTALL_TMPDIR" "$PKG/installer.sh" --engine docker --uninstall --yes
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
    [[ "$output" == *"'docker' is podman's docker shim (podman-docker): using podman"* ]]
    [[ "$output" == *"engine: podman $(podman info --format '{{.Version.Version}}')"* ]]
    [[ "$output" != *"unreachable"* ]]
    [[ "$output" == *"nothing to remove"* ]]
    # Without --engine too: 'docker' is found first, and is the shim.
    PATH="$shim:$PATH" run env TMPDIR="$INSTALL_TMPDIR" "$PKG/installer.sh" --uninstall --yes
    [ "$status" -eq 0 ]
    [[ "$output" == *"engine: podman"* ]]
    assert_unchanged "$BEFORE"
}

# ---------------------------------------------------------------------------- item 10

@test "item 10: sh and bash older than 4.2 are refused at once with the reason" {
    run sh "$PKG/installer.sh" --help
    [ "$status" -eq "$EX_TOOLS" ]
    [[ "$output" == *"run this installer with bash"* ]]
    # The check reads BASH_VERSION before anything else runs; an old bash is simulated by
    # setting it, then sourcing the script (which stops at the check).
    run bash -c 'BASH_VERSION=4.1.17; . "$1"' _ "$PKG/installer.sh"
    [ "$status" -eq "$EX_TOOLS" ]
    [[ "$output" == *"needs bash 4.2 or newer; this is bash 4.1.17"* ]]
    run bash -c 'BASH_VERSION=3.2.57; . "$1"' _ "$PKG/installer.sh"
    [ "$status" -eq "$EX_TOOLS" ]
    assert_unchanged "$BEFORE"
}

@test "item 10: no array that can be empty is expanded unguarded (set -u aborts on it in bash < 4.4)" {
    # Arrays that always hold something when expanded; every other "${a[@]}" must be written
    # ${a[@]+"${a[@]}"}.
    local never_empty='^(EXPECTED_FILES|EXPECTED_MODES|RUN_OPTS|args|members|BASH_REMATCH)$' name bad=()
    while read -r name; do
        [[ "$name" =~ $never_empty ]] || bad+=("$name")
    done < <(grep -v '^ *#' "$PKG/installer.sh" | sed 's/\${\([A-Za-z_]*\)\[@\]+"\${\1\[@\]}"}//g' |
        grep -oE '"\$\{[A-Za-z_]+\[@\]' | sed -E 's/"\$\{([A-Za-z_]+)\[@\]/\1/' | sort -u)
    [ "${#bad[@]}" -eq 0 ] || { echo "unguarded expansions of: ${bad[*]}"; return 1; }
    # And the runs with the arrays empty: no arguments at all, no temporary files, nothing to
    # uninstall.
    run env TMPDIR="$INSTALL_TMPDIR" "$PKG/installer.sh" </dev/null
    [ "$status" -eq "$EX_INPUT" ]
    [[ "$output" != *"unbound variable"* ]]
    run installer --uninstall --yes
    [ "$status" -eq 0 ]
    [[ "$output" != *"unbound variable"* ]]
    assert_unchanged "$BEFORE"
}

@test "item 10: --purge deletes only a directory holding exactly our files" {
    mkdir -m 0750 "$AI_PROXY_CONFIG_DIR"
    printf 'PORT=1\n' >"$AI_PROXY_CONFIG_DIR/.env"
    printf 'providers: {}\n' >"$AI_PROXY_CONFIG_DIR/provider-config.yaml"
    printf 'mine\n' >"$AI_PROXY_CONFIG_DIR/notes.txt"
    BEFORE=$(host_state)
    run installer --uninstall --purge --yes
    [ "$status" -eq "$EX_CONFIG" ] || { echo "$output"; return 1; }
    [[ "$output" == *"holds files this installer did not write (notes.txt)"*"nothing was removed"* ]]
    assert_unchanged "$BEFORE"

    rm "$AI_PROXY_CONFIG_DIR/notes.txt" "$AI_PROXY_CONFIG_DIR/provider-config.yaml"
    BEFORE=$(host_state)
    run installer --uninstall --purge --yes
    [ "$status" -eq "$EX_CONFIG" ]
    [[ "$output" == *"does not hold both .env and provider-config.yaml"* ]]
    assert_unchanged "$BEFORE"

    printf 'providers: {}\n' >"$AI_PROXY_CONFIG_DIR/provider-config.yaml"
    run installer --uninstall --purge --yes
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
    [ ! -e "$AI_PROXY_CONFIG_DIR" ]
}
