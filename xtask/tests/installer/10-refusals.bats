#!/usr/bin/env bats
# Everything the installer refuses before it changes the host: each case checks the exit code,
# that the message names the problem, and that nothing on the host changed.

load helpers

setup() {
    unique_names
    BEFORE=$(host_state)
}

teardown() {
    remove_test_objects
}

@test "--help prints usage, every option and variable, and the exit-code table of INSTALL.md and docs/installer.md" {
    # All four copies are rendered from xtask/src/release/exit_codes.rs; this checks the
    # shipped artifacts agree row by row, and that every EX_* constant has its row.
    run -0 "$PKG/installer.sh" --help
    local word
    for word in --port --yes --engine --bind --archive --uninstall --purge --help \
        AI_PROXY_PORT AI_PROXY_NAME AI_PROXY_BUILD_DIR AI_PROXY_CONFIG_DIR AI_PROXY_HEALTH_TIMEOUT \
        AI_PROXY_LOCK_DIR AI_PROXY_LOCK_TIMEOUT DOCKER_HOST CONTAINER_HOST NO_COLOR; do
        [[ "$output" == *"$word"* ]] || { echo "--help does not mention $word"; return 1; }
    done
    local table install_md docs_md code description rows=0
    table=$(sed -n '/^Exit codes:/,/^A failure/p' <<<"$output" | sed '1d;$d')
    install_md=$(tar -xzOf "$PKG/ai-proxy-release.tar.gz" INSTALL.md)
    docs_md=$(cat "$REPO_ROOT/docs/installer.md")
    while read -r code description; do
        rows=$((rows + 1))
        grep -qF "| $code | $description |" <<<"$install_md" || { echo "INSTALL.md lacks: | $code | $description |"; return 1; }
        grep -qF "| $code | $description |" <<<"$docs_md" || { echo "docs/installer.md lacks: | $code | $description |"; return 1; }
    done <<<"$table"
    [ "$rows" -eq "$(($(grep -cE '^readonly EX_[A-Z]+=[0-9]+$' "$PKG/installer.sh") + 1))" ]
    assert_unchanged "$BEFORE"
}

@test "colours only on a terminal, and never with NO_COLOR" {
    local esc=$'\033['
    run installer --port abc
    [ "$status" -eq "$EX_INPUT" ]
    [[ "$output" != *"$esc"* ]]
    run script -qec "$PKG/installer.sh --engine $ENGINE --port abc" /dev/null
    [[ "$output" == *"${esc}31merror:"* ]]
    NO_COLOR=1 run script -qec "$PKG/installer.sh --engine $ENGINE --port abc" /dev/null
    [[ "$output" == *"error:"* && "$output" != *"$esc"* ]]
    assert_unchanged "$BEFORE"
}

@test "an invalid --port fails at once, naming the reason, for every malformed form" {
    local form reason
    while IFS='|' read -r form reason; do
        run installer --port "$form"
        [ "$status" -eq "$EX_INPUT" ] || { echo "--port '$form' exited $status: $output"; return 1; }
        [[ "$output" == *"$reason"* ]] || { echo "--port '$form': no '$reason' in: $output"; return 1; }
    done <<'EOF'
|it is empty
abc|not a plain decimal number
+8080|not a plain decimal number
-1|not a plain decimal number
 8080|not a plain decimal number
8080 |not a plain decimal number
80 80|not a plain decimal number
0x1F90|not a plain decimal number
1e3|not a plain decimal number
8080.0|not a plain decimal number
０８０|not a plain decimal number
08080|leading zeros
00|leading zeros
0|outside 1-65535
65536|outside 1-65535
99999999999999999999|outside 1-65535
EOF
    AI_PROXY_PORT=abc run installer
    [ "$status" -eq "$EX_INPUT" ]
    [[ "$output" == *"not a plain decimal number"* ]]
    assert_unchanged "$BEFORE"
}

@test "a --port held by another program is refused, naming the holder" {
    local port
    port=$(free_port)
    hold_port "$port"
    run installer --port "$port"
    [ "$status" -eq "$EX_INPUT" ]
    [[ "$output" == *"port $port is in use by python3"* ]]
    [[ "$output" == *"Nothing was changed"* ]]
    assert_unchanged "$BEFORE"
}

@test "the port question re-asks with the reason and gives up after 5 invalid answers" {
    local busy
    busy=$(free_port)
    hold_port "$busy"
    run installer_with_input "abc\n-1\n1e3\n65536\n$busy\n"
    [ "$status" -eq "$EX_INPUT" ]
    [ "$(grep -c 'is not usable' <<<"$output")" -eq 5 ]
    [[ "$output" == *"'abc' is not usable: not a plain decimal number"* ]]
    [[ "$output" == *"'65536' is not usable: outside 1-65535"* ]]
    [[ "$output" == *"'$busy' is not usable: port $busy is in use"* ]]
    [[ "$output" == *"no valid port after 5 answers"* ]]
    assert_unchanged "$BEFORE"
}

@test "end of input at the port question exits without changes" {
    run installer_with_input "12x\n"
    [ "$status" -eq "$EX_INPUT" ]
    [[ "$output" == *"end of input"* ]]
    assert_unchanged "$BEFORE"
}

@test "unknown options, bad --engine, relative paths and --purge alone are usage errors" {
    run installer --frobnicate
    [ "$status" -eq "$EX_USAGE" ]
    run "$PKG/installer.sh" --engine lxc
    [ "$status" -eq "$EX_USAGE" ]
    run installer --bind 999.1.1.1 --port 1
    [ "$status" -eq "$EX_USAGE" ]
    AI_PROXY_CONFIG_DIR=srv/ai-proxy run installer --port "$(free_port)"
    [ "$status" -eq "$EX_USAGE" ]
    [[ "$output" == *"AI_PROXY_CONFIG_DIR must be an absolute path"* ]]
    AI_PROXY_BUILD_DIR=/tmp/../etc run installer --port "$(free_port)"
    [ "$status" -eq "$EX_USAGE" ]
    run installer --purge
    [ "$status" -eq "$EX_USAGE" ]
    assert_unchanged "$BEFORE"
}

@test "a corrupted archive is refused before anything is extracted; a low port is warned about" {
    copy_pkg "$BATS_TEST_TMPDIR/pkg"
    printf 'X' | dd of="$BATS_TEST_TMPDIR/pkg/ai-proxy-release.tar.gz" bs=1 seek=2000 conv=notrunc status=none
    rm "$BATS_TEST_TMPDIR/pkg/ai-proxy-release.tar.gz.sha256"
    INSTALLER="$BATS_TEST_TMPDIR/pkg/installer.sh" run installer --port 1000
    [ "$status" -eq "$EX_INTEGRITY" ]
    [[ "$output" == *"CIS Docker Benchmark 5.8"* ]]
    [[ "$output" == *"but this installer expects"* ]]
    assert_unchanged "$BEFORE"
}

@test "an archive that disagrees with its .sha256 file is refused" {
    copy_pkg "$BATS_TEST_TMPDIR/pkg"
    echo "$(printf '0%.0s' {1..64})  ai-proxy-release.tar.gz" >"$BATS_TEST_TMPDIR/pkg/ai-proxy-release.tar.gz.sha256"
    INSTALLER="$BATS_TEST_TMPDIR/pkg/installer.sh" run installer --port "$(free_port)"
    [ "$status" -eq "$EX_INTEGRITY" ]
    [[ "$output" == *".sha256 lists 0000"* ]]
    assert_unchanged "$BEFORE"
}

@test "a missing archive is refused with the fix" {
    mkdir -p "$BATS_TEST_TMPDIR/alone"
    cp "$PKG/installer.sh" "$BATS_TEST_TMPDIR/alone/"
    INSTALLER="$BATS_TEST_TMPDIR/alone/installer.sh" run installer --port "$(free_port)"
    [ "$status" -eq "$EX_ARCHIVE" ]
    [[ "$output" == *"release archive not found"*"--archive PATH"* ]]
    run installer --port "$(free_port)" --archive "$BATS_TEST_TMPDIR/nope.tar.gz"
    [ "$status" -eq "$EX_ARCHIVE" ]
    assert_unchanged "$BEFORE"
}

@test "links, devices, '..' paths, extra and missing files in the archive are refused" {
    local kind
    for kind in symlink hardlink device dotdot extra missing; do
        variant_pkg "$BATS_TEST_TMPDIR/$kind" "$kind"
        INSTALLER="$BATS_TEST_TMPDIR/$kind/installer.sh" run installer --port "$(free_port)"
        [ "$status" -eq "$EX_EXTRACT" ] || { echo "$kind: exit $status: $output"; return 1; }
        [[ "$output" == *"Refusing to extract"* || "$output" == *"must hold exactly"* ]] || { echo "$kind: $output"; return 1; }
        [[ "$output" == *"rolling back"* ]]
        [ ! -e /etc/escaped ]
        [ ! -e "$(dirname "$AI_PROXY_BUILD_DIR")/escaped" ]
        assert_unchanged "$BEFORE"
    done
}

@test "a Dockerfile without EXPOSE fails the port rewrite and rolls back the new configuration" {
    variant_pkg "$BATS_TEST_TMPDIR/v" no-expose
    INSTALLER="$BATS_TEST_TMPDIR/v/installer.sh" run installer --port "$(free_port)"
    [ "$status" -eq "$EX_DOCKERFILE" ]
    [[ "$output" == *"exactly one EXPOSE and one HEALTHCHECK"* ]]
    [[ "$output" == *"removed $AI_PROXY_CONFIG_DIR"* ]]
    assert_unchanged "$BEFORE"
}

@test "an unreachable engine is reported with its own exit code" {
    if [[ "$ENGINE" == docker ]]; then
        DOCKER_HOST=unix:///nonexistent/docker.sock run installer --port "$(free_port)"
    else
        CONTAINER_HOST=unix:///nonexistent/podman.sock run installer --port "$(free_port)"
    fi
    [ "$status" -eq "$EX_ENGINE" ]
    [[ "$output" == *"daemon is unreachable"* ]]
    assert_unchanged "$BEFORE"
}

# A PATH holding every command of this host except those named, readable by any user.
path_without() {
    local dir d f
    dir=$(mktemp -d /tmp/aipt-path.XXXXXX)
    chmod 0755 "$dir"
    CLEANUP_DIRS+=("$dir")
    for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
        for f in "$d"/*; do
            [[ -x "$f" && ! -e "$dir/${f##*/}" ]] && ln -s "$f" "$dir/${f##*/}"
        done
    done
    for f in "$@"; do
        rm -f "$dir/$f"
    done
    echo "$dir"
}

@test "a missing required tool is reported with its own exit code" {
    local path
    path_without sha256sum >"$BATS_TEST_TMPDIR/path"
    path=$(cat "$BATS_TEST_TMPDIR/path")
    PATH="$path" run installer --port "$(free_port)"
    [ "$status" -eq "$EX_TOOLS" ]
    [[ "$output" == *"'sha256sum' is required"* ]]
    path_without curl wget >"$BATS_TEST_TMPDIR/path"
    path=$(cat "$BATS_TEST_TMPDIR/path")
    PATH="$path" run installer --port "$(free_port)"
    [ "$status" -eq "$EX_TOOLS" ]
    [[ "$output" == *"neither curl nor wget"* ]]
    assert_unchanged "$BEFORE"
}

# as_unprivileged PATHDIR ARGS...: the installer as a user that is not root and cannot become
# root, from a copy it can read, with a PATH of our choosing.
as_unprivileged() {
    local path=$1
    shift
    setpriv --reuid="$UNPRIVILEGED_USER" --regid="$UNPRIVILEGED_USER" --init-groups \
        env -i PATH="$path" HOME=/ AI_PROXY_NAME="$AI_PROXY_NAME" AI_PROXY_BUILD_DIR="$AI_PROXY_BUILD_DIR" \
        AI_PROXY_CONFIG_DIR="$AI_PROXY_CONFIG_DIR" TMPDIR="$INSTALL_TMPDIR" \
        bash "$UNPRIV_PKG/installer.sh" --engine "$ENGINE" "$@"
}

# The engine and sudo are replaced by recorders, so the test sees whether the installer got
# past its root check (it must not) and how it used sudo.
unprivileged_setup() {
    id "$UNPRIVILEGED_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$UNPRIVILEGED_USER"
    UNPRIV_PKG=$(mktemp -d /tmp/aipt-unpriv.XXXXXX)
    CLEANUP_DIRS+=("$UNPRIV_PKG")
    copy_pkg "$UNPRIV_PKG"
    chmod -R a+rX "$UNPRIV_PKG"
    FAKE=$(mktemp -d /tmp/aipt-fake.XXXXXX)
    CLEANUP_DIRS+=("$FAKE")
    chmod 0777 "$FAKE"
    mkdir -p "$FAKE/bin"
    printf '#!/bin/bash\necho "$0 $*" >>%s/calls\nexit 1\n' "$FAKE" >"$FAKE/bin/$ENGINE"
    chmod -R a+rx "$FAKE/bin"
    # The user under test must really be unprivileged.
    [ "$(setpriv --reuid="$UNPRIVILEGED_USER" --regid="$UNPRIVILEGED_USER" --init-groups id -u)" -ne 0 ]
    run setpriv --reuid="$UNPRIVILEGED_USER" --regid="$UNPRIVILEGED_USER" --init-groups "$ENGINE" ps
    [ "$status" -ne 0 ] || [[ "$ENGINE" == podman ]]
}

@test "non-root without sudo: refused before touching the engine or the host" {
    unprivileged_setup
    local path
    path_without sudo >"$BATS_TEST_TMPDIR/path"
    path=$(cat "$BATS_TEST_TMPDIR/path")
    [ ! -e "$path/sudo" ]
    run as_unprivileged "$FAKE/bin:$path" --port "$(free_port)"
    [ "$status" -eq "$EX_PRIVILEGE" ]
    [[ "$output" == *"needs root and sudo is not installed"* ]]
    [ ! -e "$FAKE/calls" ]
    assert_unchanged "$BEFORE"
}

@test "non-root where sudo wants a password: refused with the command to run" {
    unprivileged_setup
    printf '#!/bin/bash\necho "sudo $*" >>%s/sudo-calls\nexit 1\n' "$FAKE" >"$FAKE/bin/sudo"
    chmod a+rx "$FAKE/bin/sudo"
    run as_unprivileged "$FAKE/bin:/usr/bin:/bin" --port 4321
    [ "$status" -eq "$EX_PRIVILEGE" ]
    [[ "$output" == *"sudo asks for a password"*"sudo $UNPRIV_PKG/installer.sh --engine $ENGINE --port 4321"* ]]
    grep -qx 'sudo -n true' "$FAKE/sudo-calls"
    [ ! -e "$FAKE/calls" ]
    assert_unchanged "$BEFORE"
}

@test "non-root with passwordless sudo: runs itself again through sudo with its options and overrides" {
    unprivileged_setup
    printf '#!/bin/bash\necho "sudo $*" >>%s/sudo-calls\nexit 0\n' "$FAKE" >"$FAKE/bin/sudo"
    chmod a+rx "$FAKE/bin/sudo"
    run as_unprivileged "$FAKE/bin:/usr/bin:/bin" --port 4321 --yes
    [ "$status" -eq 0 ]
    [[ "$output" == *"running again through passwordless sudo"* ]]
    run cat "$FAKE/sudo-calls"
    [ "${lines[0]}" = "sudo -n true" ]
    [[ "${lines[1]}" == "sudo -n -- env AI_PROXY_NAME=$AI_PROXY_NAME AI_PROXY_BUILD_DIR=$AI_PROXY_BUILD_DIR AI_PROXY_CONFIG_DIR=$AI_PROXY_CONFIG_DIR bash $UNPRIV_PKG/installer.sh --archive $UNPRIV_PKG/ai-proxy-release.tar.gz --engine $ENGINE --port 4321 --yes" ]]
    [ ! -e "$FAKE/calls" ]
    assert_unchanged "$BEFORE"
}
