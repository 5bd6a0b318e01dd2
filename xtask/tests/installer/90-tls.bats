#!/usr/bin/env bats
# HTTPS end to end. Automatic certificates: a real ACME server (Debian's pebble) on this host,
# reached by the container at its network's gateway, validating TLS-ALPN-01 on the published
# host port 443; the test name resolves through a line this file adds to /etc/hosts (and
# removes in teardown_file): the installer's own DNS check (getent) and pebble's resolver both
# read it, so both are exercised as on a real host, where no override knob is used. Then the
# admin's own certificate (openssl), and the refusals that must change nothing.
#
# Host port 443 must be free: these tests publish it, as a real install does.

load helpers

setup_file() {
    unique_names tls
    export DOMAIN="aipt-${BATS_ROOT_PID:-$$}.ai-proxy-e2e.test"
    export ELSEWHERE="aipt-elsewhere-${BATS_ROOT_PID:-$$}.ai-proxy-e2e.test"
    export PEBBLE_DIR="$BATS_FILE_TMPDIR/pebble"
    mkdir -p "$PEBBLE_DIR"
    # The address pebble connects to for the name: this host's outgoing address (a published
    # port answers there with both engines), else loopback.
    export HOST_ADDR
    HOST_ADDR=$(ip -4 route get 192.0.2.1 2>/dev/null | sed -nE 's/.* src ([0-9.]+).*/\1/p')
    [[ -n "$HOST_ADDR" ]] || HOST_ADDR=127.0.0.1
    add_hosts_line "$HOST_ADDR $DOMAIN"
    # TEST-NET-3: an address that is certainly not this host's.
    add_hosts_line "203.0.113.7 $ELSEWHERE"
    start_pebble
}

teardown_file() {
    remove_test_objects
    # (Read from its file: setup_file's variables do not reach teardown_file.)
    [[ ! -f "$PEBBLE_DIR/pid" ]] || kill "$(cat "$PEBBLE_DIR/pid")" 2>/dev/null || true
    remove_hosts_lines
}

setup() {
    unique_names tls
    OWN_NAMES=0
}

# teardown: a test with names of its own removes what it made, even when it fails.
teardown() {
    ((!OWN_NAMES)) || remove_test_objects
}

# add_hosts_line LINE: appended to /etc/hosts, tagged for remove_hosts_lines. /etc/hosts may be
# a bind mount (in a container), so it is rewritten in place, never renamed over.
add_hosts_line() {
    printf '%s # ai-proxy-e2e %s\n' "$1" "${BATS_ROOT_PID:-$$}" >>/etc/hosts
}

remove_hosts_lines() {
    local kept
    kept=$(grep -v " # ai-proxy-e2e ${BATS_ROOT_PID:-$$}\$" /etc/hosts)
    printf '%s\n' "$kept" >/etc/hosts
}

# gateway: the host's address on the engine's default network, where the container reaches
# pebble.
gateway() {
    local gw bridge
    if [[ "$ENGINE" == docker ]]; then
        gw=$(docker network inspect bridge --format '{{range .IPAM.Config}}{{.Gateway}} {{end}}' | awk '{print $1}')
        if [[ -z "$gw" ]]; then
            # Docker 20.10 (Debian's docker.io) leaves the default bridge's gateway implicit in
            # its IPAM config: it is the bridge interface's own address.
            bridge=$(docker network inspect bridge --format '{{index .Options "com.docker.network.bridge.name"}}')
            gw=$(ip -4 -o addr show dev "${bridge:-docker0}" | awk '{sub(/\/.*/, "", $4); print $4; exit}')
        fi
        echo "$gw"
    else
        podman network inspect podman --format '{{range .Subnets}}{{.Gateway}} {{end}}' | awk '{print $1}'
    fi
}

# start_pebble: a CA for pebble's own HTTPS (valid for the gateway address the container uses),
# then pebble listening on all addresses, validating on port 443, resolving names with the
# system resolver (/etc/hosts).
start_pebble() {
    local gw acme mgmt http
    gw=$(gateway)
    [[ -n "$gw" ]] || { echo "no gateway address for $ENGINE's default network" >&2; return 1; }
    acme=$(free_port)
    mgmt=$(free_port)
    http=$(free_port)
    (
        cd "$PEBBLE_DIR" &&
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=pebble test CA" \
                -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign -keyout ca.key -out ca.pem &&
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost -keyout key.pem -out srv.csr &&
            printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:%s\nextendedKeyUsage=serverAuth\n' "$gw" >ext.cnf &&
            openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf -out cert.pem
    ) >"$PEBBLE_DIR/openssl.log" 2>&1 || { cat "$PEBBLE_DIR/openssl.log" >&2; return 1; }
    printf '{"pebble":{"listenAddress":"0.0.0.0:%s","managementListenAddress":"127.0.0.1:%s","certificate":"cert.pem","privateKey":"key.pem","httpPort":%s,"tlsPort":443,"ocspResponderURL":"","externalAccountBindingRequired":false}}\n' \
        "$acme" "$mgmt" "$http" >"$PEBBLE_DIR/pebble.json"
    (cd "$PEBBLE_DIR" && exec env PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 pebble -config pebble.json -strict=false \
        >pebble.log 2>&1 </dev/null 3>&-) &
    echo $! >"$PEBBLE_DIR/pid"
    # Bounded like every background helper, should teardown_file never run.
    watchdog "$!" 900
    echo "https://$gw:$acme/dir" >"$PEBBLE_DIR/url"
    echo "$mgmt" >"$PEBBLE_DIR/management"
    local _
    for _ in $(seq 1 100); do
        curl -fsS -m 2 --cacert "$PEBBLE_DIR/ca.pem" "https://127.0.0.1:$acme/dir" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "pebble did not start:" >&2
    cat "$PEBBLE_DIR/pebble.log" >&2
    return 1
}

# pebble_root: the root pebble issues under (new at each start), from its management port.
pebble_root() {
    curl -fsS -m 5 --cacert "$PEBBLE_DIR/ca.pem" "https://127.0.0.1:$(cat "$PEBBLE_DIR/management")/roots/0" >"$PEBBLE_DIR/root.pem"
    echo "$PEBBLE_DIR/root.pem"
}

# orders: the certificate orders pebble received.
orders() {
    grep -c 'POST /order-plz' "$PEBBLE_DIR/pebble.log" || true
}

# https_ping: /ping on host port 443 for the domain, trusting only pebble's root.
https_ping() {
    curl -fsS -m 5 --cacert "$(pebble_root)" --resolve "$DOMAIN:443:$HOST_ADDR" "https://$DOMAIN/ping"
}

served_serial() {
    openssl s_client -connect "$HOST_ADDR:443" -servername "$DOMAIN" </dev/null 2>/dev/null | openssl x509 -noout -serial
}

acme_install() {
    installer --domain "$DOMAIN" --email admin@example.com --acme-directory "$(cat "$PEBBLE_DIR/url")" \
        --acme-ca-file "$PEBBLE_DIR/ca.pem" --yes "$@"
}

@test "refusals before any change: a name that is not this host, port 443 taken, bad options" {
    local before
    before=$(host_state)

    run installer --domain "$ELSEWHERE" --yes
    [ "$status" -eq "$EX_TLS" ] || { echo "$output"; return 1; }
    [[ "$output" == *"$ELSEWHERE resolves to 203.0.113.7 but none of these is an address of this host"* ]]
    [[ "$output" == *"--skip-dns-check"* ]]
    assert_unchanged "$before"

    run installer --domain nothing.invalid --yes
    [ "$status" -eq "$EX_TLS" ]
    [[ "$output" == *"nothing.invalid does not resolve"* ]]
    assert_unchanged "$before"

    # The right name, but another program holds host port 443.
    hold_port 443
    run acme_install
    [ "$status" -eq "$EX_TLS" ] || { echo "$output"; return 1; }
    [[ "$output" == *"host port 443: port 443 is in use"* ]]
    kill "${HELD_PIDS[@]}"
    HELD_PIDS=()
    assert_unchanged "$before"

    run installer --domain "$DOMAIN" --tls-cert /etc/hostname --tls-key /etc/hostname --yes
    [ "$status" -eq "$EX_USAGE" ]
    [[ "$output" == *"exclude each other"* ]]
    run installer --email admin@example.com --yes
    [ "$status" -eq "$EX_USAGE" ]
    [[ "$output" == *"only go with --domain"* ]]
    run installer --tls-cert /etc/hostname --tls-key /etc/hostname --port "$(free_port)" --yes
    [ "$status" -eq "$EX_TLS" ]
    [[ "$output" == *"is not PEM"* ]]
    assert_unchanged "$before"

    # A link planted where the certificate directory goes is refused, not followed (nor chowned).
    mkdir -m 0750 "$AI_PROXY_CONFIG_DIR"
    chown 0:1001 "$AI_PROXY_CONFIG_DIR"
    ln -s /etc "$AI_PROXY_CONFIG_DIR/tls"
    before=$(host_state)
    run acme_install
    [ "$status" -eq "$EX_CONFIG" ] || { echo "$output"; return 1; }
    [[ "$output" == *"$AI_PROXY_CONFIG_DIR/tls is a symbolic link"* ]]
    assert_unchanged "$before"
    [ "$(stat -c %u /etc)" -eq 0 ]
    rm "$AI_PROXY_CONFIG_DIR/tls"
    rmdir "$AI_PROXY_CONFIG_DIR"
    [ "$(orders)" -eq 0 ]
}

@test "--domain: host port 443 to a high container port, a certificate from pebble, the cache volume" {
    local started=$SECONDS
    run acme_install
    [ "$status" -eq 0 ] || { echo "$output"; cat "$PEBBLE_DIR/pebble.log"; return 1; }
    echo "# --domain install with first issuance (${ENGINE}): $((SECONDS - started)) s" >&3
    [[ "$output" == *"$DOMAIN resolves to $HOST_ADDR, an address of this host"* ]]
    [[ "$output" == *"URL:        https://$DOMAIN "* ]]
    [[ "$output" != *"travel in clear"* ]]
    [ "$(https_ping)" = pong ]
    [ "$(orders)" -eq 1 ]
    local n=$AI_PROXY_NAME
    # 443 on the host, the default high port in the container, and EXPOSE/HEALTHCHECK on it.
    [ "$(container_field "$n" '{{json .HostConfig.PortBindings}}')" = '{"8080/tcp":[{"HostIp":"","HostPort":"443"}]}' ]
    [[ "$("$ENGINE" image inspect --format '{{json .Config.ExposedPorts}}' "$AI_PROXY_NAME:$(pkg_version)")" == '{"8080/tcp":{}}' ]]
    [[ "$("$ENGINE" image inspect --format '{{json .Config.Healthcheck.Test}}' "$AI_PROXY_NAME:$(pkg_version)")" == *'"--port","8080"'* ]]
    [ "$(health_of "$n")" = healthy ]
    # The root stays read-only; the configuration read-only; the cache the one writable mount.
    [ "$(container_field "$n" '{{.HostConfig.ReadonlyRootfs}}')" = true ]
    [ "$(container_field "$n" '{{range .Mounts}}{{.Source}}:{{.Destination}}:{{.RW}} {{end}}' | tr ' ' '\n' | LC_ALL=C sort | xargs)" = \
        "$AI_PROXY_CONFIG_DIR/tls:/app/tls:true $AI_PROXY_CONFIG_DIR:/app/config:false" ]
    [ "$(stat -c '%a %u:%g %F' "$AI_PROXY_CONFIG_DIR/tls")" = "700 1001:1001 directory" ]
    [ -n "$(find "$AI_PROXY_CONFIG_DIR/tls" -name 'certificate-*' -type f -perm 0600)" ]
    grep -qx "TLS_DOMAINS=$DOMAIN" "$AI_PROXY_CONFIG_DIR/.env"
    grep -qx "ACME_EMAIL=admin@example.com" "$AI_PROXY_CONFIG_DIR/.env"
    grep -qx "ACME_CA_FILE=/app/config/acme-ca.pem" "$AI_PROXY_CONFIG_DIR/.env"
    grep -qx "TLS_CACHE_DIR=/app/tls" "$AI_PROXY_CONFIG_DIR/.env"
    [ "$(stat -c '%a %u:%g' "$AI_PROXY_CONFIG_DIR/acme-ca.pem")" = "640 0:1001" ]
    served_serial >"$BATS_FILE_TMPDIR/serial"
    grep -q '^serial=' "$BATS_FILE_TMPDIR/serial"
}

@test "a re-run (upgrade) keeps the HTTPS mode and the certificate: same serial, no new order" {
    [ -s "$BATS_FILE_TMPDIR/serial" ] || { echo "the --domain install test did not pass"; return 1; }
    local started=$SECONDS
    run installer --yes
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
    echo "# --domain re-run with the cached certificate (${ENGINE}): $((SECONDS - started)) s" >&3
    [[ "$output" == *"keeping automatic certificates for $DOMAIN"* ]]
    [[ "$output" == *"kept $AI_PROXY_CONFIG_DIR/tls"* ]]
    [ "$(https_ping)" = pong ]
    [ "$(served_serial)" = "$(cat "$BATS_FILE_TMPDIR/serial")" ]
    [ "$(orders)" -eq 1 ]
    [ "$(container_field "$AI_PROXY_NAME" '{{json .HostConfig.PortBindings}}')" = '{"8080/tcp":[{"HostIp":"","HostPort":"443"}]}' ]
}

@test "--uninstall keeps the certificates, --purge removes them" {
    [ -s "$BATS_FILE_TMPDIR/serial" ] || { echo "the --domain install test did not pass"; return 1; }
    run installer --uninstall --yes
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
    [[ "$output" == *"certificates in $AI_PROXY_CONFIG_DIR/tls included"* ]]
    [ -n "$(find "$AI_PROXY_CONFIG_DIR/tls" -name 'certificate-*' -type f)" ]
    run installer --uninstall --purge --yes
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
    [[ "$output" == *"removed $AI_PROXY_CONFIG_DIR/tls"* ]]
    [ ! -e "$AI_PROXY_CONFIG_DIR" ]
}

@test "--tls-cert/--tls-key: the admin's pair copied (key 0640 root:1001) and served, healthy" {
    unique_names
    OWN_NAMES=1
    local dir="$BATS_TEST_TMPDIR/cert" port
    mkdir -p "$dir"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
        -addext subjectAltName=DNS:localhost -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
    port=$(free_port)
    run installer --tls-cert "$dir/cert.pem" --tls-key "$dir/key.pem" --port "$port" --yes
    [ "$status" -eq 0 ] || { echo "$output"; return 1; }
    [[ "$output" == *"URL:        https://<this-host>:$port "* ]]
    [ "$(stat -c '%a %u:%g' "$AI_PROXY_CONFIG_DIR/tls-key.pem")" = "640 0:1001" ]
    cmp "$dir/key.pem" "$AI_PROXY_CONFIG_DIR/tls-key.pem"
    grep -qx "TLS_CERT_FILE=/app/config/tls-cert.pem" "$AI_PROXY_CONFIG_DIR/.env"
    grep -qx "TLS_KEY_FILE=/app/config/tls-key.pem" "$AI_PROXY_CONFIG_DIR/.env"
    [ ! -e "$AI_PROXY_CONFIG_DIR/tls" ]
    [ "$(health_of "$AI_PROXY_NAME")" = healthy ]
    [ "$(curl -fsS -m 5 --cacert "$dir/cert.pem" --resolve "localhost:$port:127.0.0.1" "https://localhost:$port/ping")" = pong ]
    # Plain HTTP on the TLS port is refused, never served.
    run curl -fsS -m 5 "http://127.0.0.1:$port/ping"
    [ "$status" -ne 0 ]
}
