#!/usr/bin/env bash
# Measure how long the signet client takes to look up and sign tags in a
# repository with 10,000 tags, and compare lookups with python-tuf's ngclient.
#
# The script builds signet-server and signet (release), starts signet-server
# with its embedded PostgreSQL on 127.0.0.1, and publishes one repository with
# 10,000 tags: `signet sign --no-publish` stages the first tag,
# client_setup.py stages the rest, and one `signet publish` signs them all.
# A consumer home imports the exported root. hyperfine then times, each with
# warmup runs:
#
#   1. warm lookup: `signet lookup GUN:tag-5000` from a home that already
#      looked up once, so it contains the current trusted metadata
#   2. fresh lookup: the same from a home that contains only the imported root,
#      copied anew before each run
#   3. sign: `signet sign GUN:new-N`, a new tag each run, end to end (unlock
#      the targets key, refresh, sign, upload, server validation)
#   4. python-tuf: `client_setup.py lookup` warm and fresh, including
#      interpreter start-up, and client_setup.py time-lookup for the time of
#      refresh() plus get_targetinfo() alone inside one process
#
# Targets: warm lookup under 20 ms, fresh lookup under 200 ms, sign under
# 500 ms (means). python-tuf has no target; it is the comparison.
#
# The script prints a Markdown report on stdout: the results table, the size
# of targets.json, the machine and the command. Progress and hyperfine's own
# output go to stderr.
#
# Before each case the script waits until the CPUs are at least
# MIN_IDLE_PERCENT idle for 2 s, for at most QUIET_TIMEOUT seconds, because
# other work on the machine slows every case down. The table lists the idle
# percentage measured before each case; a case that started on a busy machine
# shows a low one.
#
# Needs: cargo, hyperfine, curl, ss, python3 and the PostgreSQL server
# binaries (PG_BIN). Run it as root or as a user that may run PostgreSQL; as
# root, the embedded PostgreSQL runs as the postgres user. All traffic goes to
# 127.0.0.1, and PostgreSQL listens on a Unix socket only. The EXIT trap
# stops signet-server by its PID, which stops its embedded PostgreSQL.
#
# Settings (environment variables):
#   SIGNET_PORT   signet-server port [18444]
#   PG_BIN        PostgreSQL binaries, put first on signet-server's PATH
#                 [/usr/lib/postgresql/15/bin]
#   BENCH_VENV    Python venv with python-tuf, created from
#                 bench/requirements.txt if missing [REPO/.venv]
#   LOOKUP_RUNS   hyperfine runs of each signet lookup case [50]
#   SIGN_RUNS     hyperfine runs of the sign case [30]
#   PYTHON_RUNS   hyperfine runs and in-process runs of each python-tuf case [20]
#   WARMUP_RUNS   hyperfine warmup runs of each case [3]
#   CASE_TIMEOUT  maximum seconds for one hyperfine case [900]
#   MIN_IDLE_PERCENT  CPU idle percentage to wait for before each case [90]
#   QUIET_TIMEOUT     maximum wait for that idle percentage, in seconds [120]
#   KEEP_WORKDIR  1 keeps the work directory with the logs and hyperfine's
#                 JSON files [0]. A failed run always keeps it.
#
# Usage: bash bench/client_lookup.sh

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$BENCH_DIR/.." && pwd)
SIGNET_PORT=${SIGNET_PORT:-18444}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
BENCH_VENV=${BENCH_VENV:-$REPO_ROOT/.venv}
LOOKUP_RUNS=${LOOKUP_RUNS:-50}
SIGN_RUNS=${SIGN_RUNS:-30}
PYTHON_RUNS=${PYTHON_RUNS:-20}
WARMUP_RUNS=${WARMUP_RUNS:-3}
CASE_TIMEOUT=${CASE_TIMEOUT:-900}
MIN_IDLE_PERCENT=${MIN_IDLE_PERCENT:-90}
QUIET_TIMEOUT=${QUIET_TIMEOUT:-120}
KEEP_WORKDIR=${KEEP_WORKDIR:-0}

GUN=registry.example.com/bench/app
TAG_COUNT=10000
LOOKUP_TAG=tag-5000
# Seconds to wait for signet-server's /readyz to return 200. The first start runs initdb.
START_TIMEOUT=120
# Seconds allowed for one setup command, such as publishing the 10,000 tags.
SETUP_TIMEOUT=300
# Targets in milliseconds, compared with the mean.
WARM_TARGET_MS=20
FRESH_TARGET_MS=200
SIGN_TARGET_MS=500

# The passphrases of the publisher's keys, read by every signet command.
export SIGNET_ROOT_PASSPHRASE="client benchmark root passphrase"
export SIGNET_TARGETS_PASSPHRASE="client benchmark targets passphrase"

WORK_DIR=""
SIGNET_PID=""

log() {
    echo "client_lookup: $*" >&2
}

fail() {
    log "error: $*"
    exit 1
}

# Stops signet-server by its PID. On SIGTERM, signet-server stops its embedded PostgreSQL.
# shellcheck disable=SC2317  # The EXIT trap calls it, which shellcheck does not see.
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -n $SIGNET_PID ]] && kill -0 "$SIGNET_PID" 2>/dev/null; then
        kill -TERM "$SIGNET_PID" 2>/dev/null || true
        wait "$SIGNET_PID" 2>/dev/null || true
    fi
    local postmaster_pid=$WORK_DIR/server/postgres/postmaster.pid
    if [[ -n $WORK_DIR && -f $postmaster_pid ]]; then
        # signet-server exited without stopping its cluster. pg_ctl signals the
        # postmaster whose PID is in this cluster's postmaster.pid.
        log "signet-server left its PostgreSQL running; stopping it"
        as_postgres "$PG_BIN/pg_ctl" stop -D "$WORK_DIR/server/postgres" -m fast -w >/dev/null 2>&1 \
            || log "failed to stop PostgreSQL in $WORK_DIR/server/postgres; its PID is in postmaster.pid"
    fi
    if [[ -n $WORK_DIR ]]; then
        if [[ $KEEP_WORKDIR == 1 || $status != 0 ]]; then
            log "kept the work directory $WORK_DIR with the logs"
        else
            rm -rf "$WORK_DIR"
        fi
    fi
    exit "$status"
}

# Runs a command as the postgres user when this script runs as root, because
# PostgreSQL rejects running as root.
as_postgres() {
    if [[ $(id -u) == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

check_requirements() {
    local command
    for command in cargo hyperfine curl ss python3 timeout; do
        command -v "$command" >/dev/null || fail "$command not found; install it first (hyperfine: apt-get install hyperfine)"
    done
    [[ -x $PG_BIN/initdb ]] || fail "PostgreSQL binaries not found in PG_BIN=$PG_BIN"
    if [[ -n $(ss -Htln "sport = :$SIGNET_PORT") ]]; then
        fail "port $SIGNET_PORT on this machine is in use; set SIGNET_PORT to a free port"
    fi
    local variable
    for variable in LOOKUP_RUNS SIGN_RUNS PYTHON_RUNS; do
        if [[ ! ${!variable} =~ ^[0-9]+$ ]] || ((${!variable} < 20)); then
            fail "$variable must be a number of at least 20, got ${!variable}"
        fi
    done
    for variable in WARMUP_RUNS CASE_TIMEOUT MIN_IDLE_PERCENT QUIET_TIMEOUT; do
        [[ ${!variable} =~ ^[0-9]+$ ]] || fail "$variable must be a whole number, got ${!variable}"
    done
}

build() {
    log "building signet-server and signet (release)"
    (cd "$REPO_ROOT" && cargo build --release --quiet -p signet-server -p signet-client)
    local target_dir=${CARGO_TARGET_DIR:-$REPO_ROOT/target}
    SERVER_BIN=$target_dir/release/signet-server
    CLIENT_BIN=$target_dir/release/signet
    [[ -x $SERVER_BIN && -x $CLIENT_BIN ]] || fail "cargo build finished but $SERVER_BIN or $CLIENT_BIN does not exist"
    BUILD_SOURCE="release build of commit $(git -C "$REPO_ROOT" rev-parse --short HEAD)"
    if [[ -n $(git -C "$REPO_ROOT" status --porcelain --untracked-files=no) ]]; then
        BUILD_SOURCE+=" with uncommitted changes"
    fi
}

prepare_venv() {
    if [[ ! -x $BENCH_VENV/bin/python ]]; then
        log "creating the Python venv $BENCH_VENV"
        python3 -m venv "$BENCH_VENV"
        "$BENCH_VENV/bin/pip" install --quiet -r "$BENCH_DIR/requirements.txt"
    fi
    PYTHON=$BENCH_VENV/bin/python
    TUF_VERSION=$("$PYTHON" -c 'import tuf; print(tuf.__version__)') \
        || fail "python-tuf is not installed in $BENCH_VENV; run $BENCH_VENV/bin/pip install -r $BENCH_DIR/requirements.txt"
}

make_work_dir() {
    WORK_DIR=$(mktemp -d /tmp/signet-client-bench.XXXXXX)
    # The postgres user must be able to enter it to reach the embedded cluster.
    chmod 755 "$WORK_DIR"
    mkdir "$WORK_DIR/hyperfine"
}

# Runs the signet client against the benchmark server with HOME_DIR as its home.
signet_in() {
    local home_dir=$1
    shift
    timeout "$SETUP_TIMEOUT" "$CLIENT_BIN" --server "$SERVER_URL" --home "$home_dir" "$@"
}

start_server() {
    SERVER_URL=http://127.0.0.1:$SIGNET_PORT
    log "starting signet-server on 127.0.0.1:$SIGNET_PORT with its embedded PostgreSQL"
    PATH="$PG_BIN:$PATH" "$SERVER_BIN" --listen "127.0.0.1:$SIGNET_PORT" --data-dir "$WORK_DIR/server" \
        >"$WORK_DIR/server.log" 2>&1 &
    SIGNET_PID=$!
    local deadline=$((SECONDS + START_TIMEOUT))
    until curl -fsS -o /dev/null --max-time 2 "$SERVER_URL/readyz" 2>/dev/null; do
        kill -0 "$SIGNET_PID" 2>/dev/null || fail "signet-server exited during start-up; see $WORK_DIR/server.log"
        ((SECONDS < deadline)) || fail "signet-server did not answer /readyz within $START_TIMEOUT s; see $WORK_DIR/server.log"
        sleep 0.2
    done
}

# Publishes GUN with TAG_COUNT tags from the publisher home and exports its root.
publish_repository() {
    PUBLISHER_HOME=$WORK_DIR/publisher
    log "initializing $GUN"
    signet_in "$PUBLISHER_HOME" init "$GUN" >/dev/null 2>>"$WORK_DIR/client.log"

    log "staging $TAG_COUNT tags"
    local first_digest
    first_digest=$("$PYTHON" "$BENCH_DIR/client_setup.py" digest --tag tag-0000)
    # Size 1000 is what client_setup.py's tag_size() gives the tag with index 0.
    signet_in "$PUBLISHER_HOME" sign "$GUN:tag-0000" --digest "$first_digest" --size 1000 --no-publish \
        2>>"$WORK_DIR/client.log"
    "$PYTHON" "$BENCH_DIR/client_setup.py" stage --home "$PUBLISHER_HOME" --gun "$GUN" \
        --first 1 --count $((TAG_COUNT - 1)) 2>>"$WORK_DIR/client.log"

    log "publishing $TAG_COUNT tags in one targets version"
    local start=$SECONDS
    signet_in "$PUBLISHER_HOME" publish "$GUN" 2>>"$WORK_DIR/client.log"
    log "published in $((SECONDS - start)) s"

    ROOT_FILE=$WORK_DIR/root.json
    signet_in "$PUBLISHER_HOME" trust export "$GUN" >"$ROOT_FILE" 2>>"$WORK_DIR/client.log"
    TUF_URL=$SERVER_URL/v2/$GUN/_trust/tuf/
    curl -fsS --max-time 30 -o "$WORK_DIR/targets.json" "${TUF_URL}targets.json"
    TARGETS_BYTES=$(stat -c %s "$WORK_DIR/targets.json")
    local count
    count=$("$PYTHON" -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["signed"]["targets"]))' \
        "$WORK_DIR/targets.json")
    [[ $count == "$TAG_COUNT" ]] || fail "served targets.json lists $count tags, expected $TAG_COUNT"
    EXPECTED_DIGEST=$("$PYTHON" "$BENCH_DIR/client_setup.py" digest --tag "$LOOKUP_TAG")
}

# Creates the consumer homes and python-tuf metadata directories, and checks
# that both clients return the published digest.
prepare_consumers() {
    FRESH_TEMPLATE=$WORK_DIR/consumer-fresh-template
    FRESH_HOME=$WORK_DIR/consumer-fresh
    WARM_HOME=$WORK_DIR/consumer-warm
    PYTHON_FRESH_DIR=$WORK_DIR/python-fresh
    PYTHON_WARM_DIR=$WORK_DIR/python-warm

    signet_in "$FRESH_TEMPLATE" trust import "$GUN" "$ROOT_FILE" 2>>"$WORK_DIR/client.log"
    cp -a "$FRESH_TEMPLATE" "$WARM_HOME"
    local reference
    reference=$(signet_in "$WARM_HOME" lookup "$GUN:$LOOKUP_TAG")
    [[ $reference == "$GUN@$EXPECTED_DIGEST" ]] || fail "signet lookup printed $reference, expected $GUN@$EXPECTED_DIGEST"

    timeout "$SETUP_TIMEOUT" "$PYTHON" "$BENCH_DIR/client_setup.py" lookup --url "$TUF_URL" \
        --metadata-dir "$PYTHON_WARM_DIR" --root "$ROOT_FILE" --tag "$LOOKUP_TAG" \
        --expect-digest "${EXPECTED_DIGEST#sha256:}" >/dev/null
}

# Prints the CPU idle percentage of the whole machine over the next 2 seconds.
cpu_idle_percent() {
    local before after
    before=$(grep '^cpu ' /proc/stat)
    sleep 2
    after=$(grep '^cpu ' /proc/stat)
    # Fields after "cpu": user nice system idle iowait irq softirq steal.
    awk -v before="$before" -v after="$after" 'BEGIN {
        split(before, b); split(after, a)
        for (i = 2; i <= 9; i++) total += a[i] - b[i]
        idle = (a[5] - b[5]) + (a[6] - b[6])
        printf "%.0f", (total > 0) ? 100 * idle / total : 0
    }'
}

# Waits until the machine is at least MIN_IDLE_PERCENT idle, for at most
# QUIET_TIMEOUT seconds, and writes the last idle percentage measured to
# WORK_DIR/hyperfine/NAME.idle for the report.
wait_for_quiet() {
    local name=$1 idle deadline=$((SECONDS + QUIET_TIMEOUT))
    idle=$(cpu_idle_percent)
    while ((idle < MIN_IDLE_PERCENT && SECONDS < deadline)); do
        log "CPU only $idle% idle; waiting for $MIN_IDLE_PERCENT% (at most until ${QUIET_TIMEOUT} s have passed)"
        sleep 3
        idle=$(cpu_idle_percent)
    done
    echo "$idle" >"$WORK_DIR/hyperfine/$name.idle"
}

# Runs hyperfine for one case with a time limit and exports its JSON to
# WORK_DIR/hyperfine/NAME.json. Arguments after NAME go to hyperfine.
run_case() {
    local name=$1
    shift
    wait_for_quiet "$name"
    log "case $name (CPU $(cat "$WORK_DIR/hyperfine/$name.idle")% idle before)"
    timeout "$CASE_TIMEOUT" hyperfine --style basic --export-json "$WORK_DIR/hyperfine/$name.json" "$@" >&2 \
        || fail "hyperfine failed or ran longer than $CASE_TIMEOUT s in case $name"
}

run_benchmarks() {
    LOAD_BEFORE=$(cut -d ' ' -f 1-3 /proc/loadavg)
    local lookup_args="--server $SERVER_URL --output text lookup $GUN:$LOOKUP_TAG"
    local python_lookup="$PYTHON $BENCH_DIR/client_setup.py lookup --url $TUF_URL --tag $LOOKUP_TAG"

    run_case signet-warm -N --warmup "$WARMUP_RUNS" --runs "$LOOKUP_RUNS" \
        "$CLIENT_BIN --home $WARM_HOME $lookup_args"
    run_case signet-fresh -N --warmup "$WARMUP_RUNS" --runs "$LOOKUP_RUNS" \
        --prepare "sh -c 'rm -rf $FRESH_HOME && cp -a $FRESH_TEMPLATE $FRESH_HOME'" \
        "$CLIENT_BIN --home $FRESH_HOME $lookup_args"
    run_case python-warm -N --warmup "$WARMUP_RUNS" --runs "$PYTHON_RUNS" \
        "$python_lookup --metadata-dir $PYTHON_WARM_DIR"
    run_case python-fresh -N --warmup "$WARMUP_RUNS" --runs "$PYTHON_RUNS" \
        --prepare "rm -rf $PYTHON_FRESH_DIR" \
        "$python_lookup --metadata-dir $PYTHON_FRESH_DIR --root $ROOT_FILE"

    log "timing python-tuf refresh() and get_targetinfo() in one process"
    local timing_args=(--url "$TUF_URL" --tag "$LOOKUP_TAG" --runs "$PYTHON_RUNS" --warmup "$WARMUP_RUNS")
    wait_for_quiet python-warm-in-process
    timeout "$CASE_TIMEOUT" "$PYTHON" "$BENCH_DIR/client_setup.py" time-lookup "${timing_args[@]}" \
        --metadata-dir "$PYTHON_WARM_DIR" >"$WORK_DIR/hyperfine/python-warm-in-process.json"
    wait_for_quiet python-fresh-in-process
    timeout "$CASE_TIMEOUT" "$PYTHON" "$BENCH_DIR/client_setup.py" time-lookup "${timing_args[@]}" \
        --metadata-dir "$WORK_DIR/python-fresh-in-process" --root "$ROOT_FILE" >"$WORK_DIR/hyperfine/python-fresh-in-process.json"

    # The sign case runs last because every run adds a tag, so the lookups above
    # all see the same 10,000 tags. Each run signs a new tag: the shell reads and
    # increments a counter file with built-ins only, so it starts no extra
    # process. hyperfine subtracts the shell's start-up time.
    local counter=$WORK_DIR/sign-counter new_digest
    echo 0 >"$counter"
    new_digest=$("$PYTHON" "$BENCH_DIR/client_setup.py" digest --tag new)
    run_case signet-sign --warmup "$WARMUP_RUNS" --runs "$SIGN_RUNS" \
        "read n < $counter; n=\$((n + 1)); echo \$n > $counter; exec $CLIENT_BIN --server $SERVER_URL --home $PUBLISHER_HOME sign $GUN:new-\$n --digest $new_digest --size 1234"

    # Each sign run must have published its tag: the last one is visible to a consumer.
    local signed_count reference
    signed_count=$(cat "$counter")
    ((signed_count == WARMUP_RUNS + SIGN_RUNS)) || fail "the sign case ran $signed_count times, expected $((WARMUP_RUNS + SIGN_RUNS))"
    reference=$(signet_in "$WARM_HOME" lookup "$GUN:new-$signed_count")
    [[ $reference == "$GUN@$new_digest" ]] || fail "lookup of new-$signed_count printed $reference, expected $GUN@$new_digest"
}

print_report() {
    "$PYTHON" - "$WORK_DIR/hyperfine" "$WARM_TARGET_MS" "$FRESH_TARGET_MS" "$SIGN_TARGET_MS" <<'EOF'
import json
import sys
from pathlib import Path

results_dir = Path(sys.argv[1])
warm_target, fresh_target, sign_target = (float(value) for value in sys.argv[2:5])

# (file stem, label, target in ms or None for comparison rows)
cases = [
    ("signet-warm", "signet lookup, warm", warm_target),
    ("signet-fresh", "signet lookup, fresh", fresh_target),
    ("signet-sign", "signet sign one new tag", sign_target),
    ("python-warm", "python-tuf lookup, warm (process)", None),
    ("python-fresh", "python-tuf lookup, fresh (process)", None),
    ("python-warm-in-process", "python-tuf refresh()+get_targetinfo(), warm (in process)", None),
    ("python-fresh-in-process", "python-tuf refresh()+get_targetinfo(), fresh (in process)", None),
]

print("| Case | Runs | Mean ± stddev | Min | Target | Met? | CPU idle before |")
print("|---|---:|---:|---:|---:|---|---:|")
for stem, label, target in cases:
    data = json.loads((results_dir / f"{stem}.json").read_text())
    idle = (results_dir / f"{stem}.idle").read_text().strip()
    if "results" in data:
        # hyperfine's export, in seconds.
        result = data["results"][0]
        runs = len(result["times"])
        mean, stddev, minimum = (result[key] * 1000 for key in ("mean", "stddev", "min"))
    else:
        runs = data["runs"]
        mean, stddev, minimum = data["mean_ms"], data["stddev_ms"], data["min_ms"]
    if target is None:
        target_text, met = "none (comparison)", "n/a"
    else:
        target_text, met = f"< {target:.0f} ms", "yes" if mean < target else "**no**"
    print(f"| {label} | {runs} | {mean:.1f} ± {stddev:.1f} ms | {minimum:.1f} ms | {target_text} | {met} | {idle}% |")
EOF
    echo
    echo "- Repository: $GUN with $TAG_COUNT tags; targets.json is $TARGETS_BYTES bytes."
    echo "- Lookups resolve $LOOKUP_TAG. Process rows include process start-up, and the in-process rows"
    echo "  time only refresh() and get_targetinfo() (no interpreter start-up, imports or Updater constructor)."
    echo "- Sign runs: $WARMUP_RUNS warmup and $SIGN_RUNS measured, each adding tag new-N; after them"
    echo "  targets.json lists $((TAG_COUNT + WARMUP_RUNS + SIGN_RUNS)) tags."
    echo "- CPU: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    echo "- Memory: $(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "- Kernel: $(uname -sr)"
    echo "- Load average before the cases: $LOAD_BEFORE; after them: $(cut -d ' ' -f 1-3 /proc/loadavg)"
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- Build: $BUILD_SOURCE"
    echo "- Tools: $(hyperfine --version), python-tuf $TUF_VERSION, $("$PG_BIN/postgres" --version)"
    echo "- The client, signet-server and PostgreSQL share the same cores."
    echo "- Command: \`LOOKUP_RUNS=$LOOKUP_RUNS SIGN_RUNS=$SIGN_RUNS PYTHON_RUNS=$PYTHON_RUNS" \
        "WARMUP_RUNS=$WARMUP_RUNS MIN_IDLE_PERCENT=$MIN_IDLE_PERCENT bash bench/client_lookup.sh\`"
}

main() {
    check_requirements
    build
    prepare_venv
    trap cleanup EXIT INT TERM
    make_work_dir
    start_server
    publish_repository
    prepare_consumers
    run_benchmarks
    print_report
}

main "$@"
