#!/usr/bin/env bats
# Issue 11, items 2 and 4: every way out rolls back. An upgrade (with a port change) is
# interrupted by HUP, INT, TERM or QUIT at each of its steps, the signal landing at a known
# command through a pausing wrapper; afterwards the previous container (same id) serves again
# on its port, and nothing else on the host changed. Before the old container's stop it must
# not have been touched at all (same StartedAt).

load helpers

setup_file() {
    base_install_file
}

teardown_file() {
    unique_names base
    remove_test_objects
}

setup() {
    base_install_ready
}

# interrupt COMMAND ARG before|after SIGNAL [group]: an upgrade to a new port, paused at the
# first `COMMAND ARG ...`, receives SIGNAL (with "group": its whole process group, as a
# terminal's Ctrl-C or hang-up sends it); then the pause is released. Sets CODE and OUT.
interrupt() {
    local command=$1 arg=$2 when=$3 signal=$4 target pause="$BATS_TEST_TMPDIR/pause-$1-$2"
    rm -rf "$pause"
    pausing_command "$pause" "$command" "$arg" "$when"
    PATH="$pause/bin:$PATH" installer_in_background "$BATS_TEST_TMPDIR/out" --port "$(free_port)" --yes
    wait_for_file "$pause/paused"
    target=$INSTALLER_PID
    [[ "${5:-}" != group ]] || target="-$INSTALLER_PID"
    kill "-$signal" -- "$target"
    sleep 0.2
    touch "$pause/release"
    wait_exit "$INSTALLER_PID"
    OUT=$(cat "$BATS_TEST_TMPDIR/out")
    # After a HUP the rollback's messages go to the log in the lock directory.
    if [[ -e "$LOCK_DIR/$AI_PROXY_NAME.log" ]]; then
        OUT+=$'\n'$(cat "$LOCK_DIR/$AI_PROXY_NAME.log")
        rm -f "$LOCK_DIR/$AI_PROXY_NAME.log"
    fi
}

# assert_rolled_back CODE STEP SIGNAL: the exit code and message of the step, then the host.
assert_rolled_back() {
    [ "$CODE" -eq "$1" ] || { echo "exit $CODE, expected $1: $OUT"; return 1; }
    [[ "$OUT" == *"interrupted by SIG$3 during step $2"* ]] || { echo "$OUT"; return 1; }
    [ "$(container_field "$AI_PROXY_NAME" '{{.Id}}')" = "$OLD_ID" ]
    container_running "$AI_PROXY_NAME"
    wait_healthy "$AI_PROXY_NAME" "$BASE_PORT"
    assert_unchanged "$BEFORE"
}

@test "step 1 (pre-flight), SIGHUP: exits with its code, nothing to undo" {
    interrupt "$ENGINE" info after HUP
    assert_rolled_back "$EX_ENGINE" 1 HUP
    never_stopped
}

@test "step 2 (port), SIGINT to the process group" {
    interrupt ss -ltnpH after INT group
    assert_rolled_back "$EX_INPUT" 2 INT
    never_stopped
}

@test "step 3 (integrity), SIGQUIT" {
    interrupt sha256sum -- after QUIT
    assert_rolled_back "$EX_INTEGRITY" 3 QUIT
    never_stopped
}

@test "step 4 (extract), SIGTERM: the build directory goes" {
    interrupt tar -xzf after TERM
    assert_rolled_back "$EX_EXTRACT" 4 TERM
    never_stopped
}

@test "step 5 (configuration, between the .env backup and the rename), SIGHUP: .env restored exactly" {
    interrupt sync -- after HUP
    assert_rolled_back "$EX_CONFIG" 5 HUP
    never_stopped
}

@test "step 6 (Dockerfile), SIGINT" {
    interrupt sed -E after INT
    assert_rolled_back "$EX_DOCKERFILE" 6 INT
    never_stopped
}

@test "step 7 (build), SIGQUIT: the new image goes" {
    interrupt "$ENGINE" build after QUIT
    assert_rolled_back "$EX_BUILD" 7 QUIT
    never_stopped
}

@test "step 8 (check-config), SIGTERM" {
    interrupt "$ENGINE" run after TERM
    assert_rolled_back "$EX_CONFIG" 8 TERM
    never_stopped
}

@test "step 9 (created, before the stop), SIGHUP: the new container goes, the old one never stopped" {
    interrupt "$ENGINE" create after HUP
    assert_rolled_back "$EX_DEPLOY" 9 HUP
    never_stopped
}

@test "step 9 (during the old container's stop), SIGTERM: the same container is started again" {
    interrupt "$ENGINE" stop before TERM
    assert_rolled_back "$EX_DEPLOY" 9 TERM
    [[ "$OUT" == *"the previous container serves again on port $BASE_PORT"* ]]
}

@test "step 9 (during the stop), SIGINT to the whole process group as Ctrl-C sends it: the stop is not cut short, the container is started again" {
    interrupt "$ENGINE" stop before INT group
    assert_rolled_back "$EX_DEPLOY" 9 INT
    [[ "$OUT" == *"the previous container serves again on port $BASE_PORT"* ]]
}

@test "step 9 (old container renamed), SIGQUIT: renamed back and started" {
    interrupt "$ENGINE" rename after QUIT
    assert_rolled_back "$EX_DEPLOY" 9 QUIT
}

@test "step 9 (new container started), SIGHUP with the terminal gone: rolled back, the log says so" {
    local fifo="$BATS_TEST_TMPDIR/tty" reader pause="$BATS_TEST_TMPDIR/pause-start"
    mkfifo "$fifo"
    # The installer's only reader, killed before the hang-up: every later write fails (EPIPE).
    (timeout 300 cat "$fifo" >"$BATS_TEST_TMPDIR/seen") 3>&- &
    reader=$!
    pausing_engine "$pause" start after
    (exec setsid env PATH="$pause/bin:$PATH" TMPDIR="$INSTALL_TMPDIR" "$PKG/installer.sh" --engine "$ENGINE" --port "$(free_port)" --yes >"$fifo" 2>&1 </dev/null 3>&-) &
    local pid=$!
    watchdog "$pid"
    wait_for_file "$pause/paused"
    kill "$reader"
    wait "$reader" || true
    kill -HUP "$pid"
    touch "$pause/release"
    wait_exit "$pid"
    OUT=$(cat "$LOCK_DIR/$AI_PROXY_NAME.log")
    assert_rolled_back "$EX_DEPLOY" 9 HUP
    [[ "$OUT" == *"SIGHUP during step 9; rolling back"* ]]
    [[ "$OUT" == *"the previous container serves again on port $BASE_PORT"* ]]
    rm -f "$LOCK_DIR/$AI_PROXY_NAME.log"
}

@test "step 10 (health wait), SIGTERM: the new container goes, PORT restored, the old one serves again" {
    interrupt curl -fsS after TERM
    assert_rolled_back "$EX_HEALTH" 10 TERM
}
