#!/usr/bin/env bash
# Compare how fast signet-server and nginx serve the same TUF metadata files.
#
# The script builds the release server, starts a throwaway PostgreSQL cluster
# and signet-server on 127.0.0.1, publishes a repository with 1,000 tags
# (setup_repository.py), saves the served timestamp.json and targets.json, and
# serves those saved files with nginx from disk. wrk then loads both servers
# with each file at 32 and 256 connections. The script prints a Markdown
# report with requests/s, p99 latency, wrk's error counts and the server's
# peak resident memory (VmHWM, PostgreSQL not included).
#
# Targets: signet reaches at least half of nginx's requests/s and a p99 at
# most twice nginx's p99 at each load, and the server's peak RSS stays under
# 100 MB.
#
# Needs: cargo, wrk, nginx, curl, python3 and the PostgreSQL server binaries
# (PG_BIN). Run it as root, or as a user that may run PostgreSQL. As root,
# PostgreSQL runs as the postgres user and nginx workers run as the nobody user.
# All servers listen on 127.0.0.1 only. Every process the script starts is
# stopped by PID when it exits.
#
# Before each wrk run the script waits until the CPUs are at least
# MIN_IDLE_PERCENT idle for 2 s, at most QUIET_TIMEOUT seconds, because other
# work on the machine lowers both servers' numbers. The report lists the idle
# percentage it measured before each run, the CPU time per request of each
# server and of PostgreSQL, and the PostgreSQL transactions (reads that missed
# signet-server's cache) during each signet run.
#
# signet-server inherits the environment, so SIGNET_* variables and RUST_LOG
# change its settings. Leave them unset to measure the defaults.
#
# Settings (environment variables):
#   SIGNET_BIN    signet-server binary to measure; when set, the script does
#                 not build one [unset: cargo build --release]
#   PG_BIN        PostgreSQL binaries [/usr/lib/postgresql/15/bin]
#   SIGNET_PORT   signet-server port [18443]
#   NGINX_PORT    nginx port [18080]
#   DURATION      length of each wrk run, as wrk's -d takes it [20s]
#   BENCH_VENV    Python venv with bench/requirements.txt, created if missing
#                 [bench/.venv]
#   MIN_IDLE_PERCENT  CPU idle percentage to wait for before each run [90]
#   QUIET_TIMEOUT     maximum wait for that idle percentage, in seconds [120]
#   KEEP_WORKDIR  1 keeps the work directory with the server log and wrk's
#                 full output [0]. A failed run always keeps it.
#
# Usage: bench/serve_metadata.sh

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$BENCH_DIR/.." && pwd)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
SIGNET_PORT=${SIGNET_PORT:-18443}
NGINX_PORT=${NGINX_PORT:-18080}
DURATION=${DURATION:-20s}
BENCH_VENV=${BENCH_VENV:-$BENCH_DIR/.venv}
KEEP_WORKDIR=${KEEP_WORKDIR:-0}
MIN_IDLE_PERCENT=${MIN_IDLE_PERCENT:-90}
QUIET_TIMEOUT=${QUIET_TIMEOUT:-120}

WRK_THREADS=2
CONNECTION_COUNTS=(32 256)
FILES=(timestamp.json targets.json)
GUN=registry.example.com/bench/app
TAG_COUNT=1000
# Seconds to wait for a server to accept requests after it starts.
START_TIMEOUT=30
# Seconds to wait after a signet run until PostgreSQL's statistics include
# every transaction of the run (see run_wrk).
STATS_FLUSH_WAIT=11
# Thresholds that the Targets section of the report checks (see the header).
MIN_RPS_RATIO=0.5
MAX_P99_RATIO=2.0
MAX_RSS_MB=100

CLOCK_TICKS=$(getconf CLK_TCK)

WORK_DIR=""
PG_DATA=""
SIGNET_PID=""
NGINX_PID=""

log() {
    echo "serve_metadata: $*" >&2
}

fail() {
    log "error: $*"
    exit 1
}

# Stops every process this script started, newest first, each by its PID.
# shellcheck disable=SC2317  # The EXIT trap calls it, which shellcheck does not see.
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -n $NGINX_PID ]] && kill -0 "$NGINX_PID" 2>/dev/null; then
        kill -TERM "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    if [[ -n $SIGNET_PID ]] && kill -0 "$SIGNET_PID" 2>/dev/null; then
        kill -TERM "$SIGNET_PID" 2>/dev/null || true
        wait "$SIGNET_PID" 2>/dev/null || true
    fi
    if [[ -n $PG_DATA && -f $PG_DATA/postmaster.pid ]]; then
        # pg_ctl signals the postmaster whose PID is in this cluster's postmaster.pid.
        as_postgres "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -w >/dev/null 2>&1 \
            || log "failed to stop PostgreSQL in $PG_DATA; its PID is in postmaster.pid"
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
# PostgreSQL refuses to run as root.
as_postgres() {
    if [[ $(id -u) == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

check_requirements() {
    local command
    for command in cargo wrk nginx curl python3 ss; do
        command -v "$command" >/dev/null || fail "$command not found; install it first (wrk and nginx: apt-get install wrk nginx)"
    done
    [[ -x $PG_BIN/initdb ]] || fail "PostgreSQL binaries not found in PG_BIN=$PG_BIN"
    if [[ $(id -u) == 0 ]]; then
        id postgres >/dev/null 2>&1 || fail "running as root needs a postgres user to run PostgreSQL as"
    fi
    local port
    for port in "$SIGNET_PORT" "$NGINX_PORT"; do
        if [[ -n $(ss -Htln "sport = :$port") ]]; then
            fail "port $port on this machine is in use; set SIGNET_PORT or NGINX_PORT to a free port"
        fi
    done
}

build_server() {
    if [[ -n ${SIGNET_BIN:-} ]]; then
        [[ -x $SIGNET_BIN ]] || fail "SIGNET_BIN=$SIGNET_BIN is not an executable file"
        SERVER_SOURCE="the given binary $SIGNET_BIN"
        return
    fi
    log "building signet-server (release)"
    (cd "$REPO_ROOT" && cargo build --release --quiet -p signet-server)
    local target_dir=${CARGO_TARGET_DIR:-$REPO_ROOT/target}
    SIGNET_BIN=$target_dir/release/signet-server
    [[ -x $SIGNET_BIN ]] || fail "cargo build finished but $SIGNET_BIN does not exist"
    SERVER_SOURCE="release build of commit $(git -C "$REPO_ROOT" rev-parse --short HEAD)"
    if [[ -n $(git -C "$REPO_ROOT" status --porcelain --untracked-files=no) ]]; then
        SERVER_SOURCE+=" with uncommitted changes"
    fi
}

prepare_venv() {
    if [[ ! -x $BENCH_VENV/bin/python ]]; then
        log "creating the Python venv $BENCH_VENV"
        python3 -m venv "$BENCH_VENV"
        "$BENCH_VENV/bin/pip" install --quiet -r "$BENCH_DIR/requirements.txt"
    fi
}

make_work_dir() {
    WORK_DIR=$(mktemp -d /tmp/signet-bench.XXXXXX)
    # The postgres user and the nginx workers (user nobody) must be able to enter it.
    chmod 711 "$WORK_DIR"
    mkdir "$WORK_DIR/pg" "$WORK_DIR/pg/socket" "$WORK_DIR/files" "$WORK_DIR/nginx" "$WORK_DIR/wrk"
    chmod 755 "$WORK_DIR/files"
    if [[ $(id -u) == 0 ]]; then
        chown -R postgres: "$WORK_DIR/pg"
    fi
}

start_postgres() {
    PG_DATA=$WORK_DIR/pg/data
    PG_SOCKET_DIR=$WORK_DIR/pg/socket
    local socket_dir=$PG_SOCKET_DIR
    log "starting PostgreSQL in $PG_DATA (Unix socket only)"
    as_postgres "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust --encoding=UTF8 \
        >"$WORK_DIR/pg/initdb.log" 2>&1 || fail "initdb failed; see $WORK_DIR/pg/initdb.log"
    as_postgres "$PG_BIN/pg_ctl" start -D "$PG_DATA" -w -t "$START_TIMEOUT" -l "$WORK_DIR/pg/server.log" \
        -o "-c listen_addresses='' -c unix_socket_directories='$socket_dir'" >/dev/null \
        || fail "PostgreSQL did not start; see $WORK_DIR/pg/server.log"
    as_postgres "$PG_BIN/createdb" -h "$socket_dir" -U postgres signet
    DATABASE_URL="postgres://postgres@localhost/signet?host=$socket_dir"
    POSTMASTER_PID=$(head -n 1 "$PG_DATA/postmaster.pid")
}

# Waits until URL returns 200, failing early if process PID exits.
wait_for_url() {
    local url=$1 pid=$2 name=$3 deadline=$((SECONDS + START_TIMEOUT))
    until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || fail "$name exited during start-up"
        ((SECONDS < deadline)) || fail "$name did not answer $url within $START_TIMEOUT s"
        sleep 0.2
    done
}

start_signet() {
    log "starting signet-server on 127.0.0.1:$SIGNET_PORT"
    "$SIGNET_BIN" --listen "127.0.0.1:$SIGNET_PORT" --database-url "$DATABASE_URL" \
        --data-dir "$WORK_DIR/signet-data" >"$WORK_DIR/signet.log" 2>&1 &
    SIGNET_PID=$!
    wait_for_url "http://127.0.0.1:$SIGNET_PORT/healthz" "$SIGNET_PID" "signet-server (log: $WORK_DIR/signet.log)"
}

publish_and_save_files() {
    log "publishing $GUN with $TAG_COUNT tags"
    "$BENCH_VENV/bin/python" "$BENCH_DIR/setup_repository.py" --server "http://127.0.0.1:$SIGNET_PORT" \
        --gun "$GUN" --tag-count "$TAG_COUNT" >&2
    local file
    for file in "${FILES[@]}"; do
        curl -fsS --max-time 10 -o "$WORK_DIR/files/$file" "http://127.0.0.1:$SIGNET_PORT/v2/$GUN/_trust/tuf/$file"
        chmod 644 "$WORK_DIR/files/$file"
    done
    local count
    count=$("$BENCH_VENV/bin/python" -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["signed"]["targets"]))' \
        "$WORK_DIR/files/targets.json")
    [[ $count == "$TAG_COUNT" ]] || fail "served targets.json lists $count tags, expected $TAG_COUNT"
}

start_nginx() {
    local conf=$WORK_DIR/nginx/nginx.conf
    cat >"$conf" <<EOF
daemon off;
worker_processes auto;
pid $WORK_DIR/nginx/nginx.pid;
error_log $WORK_DIR/nginx/error.log warn;

events {
    worker_connections 1024;
}

http {
    default_type application/json;
    access_log off;
    sendfile on;
    client_body_temp_path $WORK_DIR/nginx/client_body;
    proxy_temp_path $WORK_DIR/nginx/proxy;
    fastcgi_temp_path $WORK_DIR/nginx/fastcgi;
    uwsgi_temp_path $WORK_DIR/nginx/uwsgi;
    scgi_temp_path $WORK_DIR/nginx/scgi;

    server {
        listen 127.0.0.1:$NGINX_PORT;
        # Same URL layout as signet: /v2/GUN/_trust/tuf/FILE.
        location ~ ^/v2/.+/_trust/tuf/(?<file>[^/]+)\$ {
            root $WORK_DIR/files;
            try_files /\$file =404;
        }
    }
}
EOF
    log "starting nginx on 127.0.0.1:$NGINX_PORT"
    nginx -p "$WORK_DIR/nginx" -e "$WORK_DIR/nginx/error.log" -c "$conf" &
    NGINX_PID=$!
    local file
    for file in "${FILES[@]}"; do
        local url=http://127.0.0.1:$NGINX_PORT/v2/$GUN/_trust/tuf/$file
        wait_for_url "$url" "$NGINX_PID" "nginx (log: $WORK_DIR/nginx/error.log)"
        curl -fsS --max-time 10 "$url" | cmp -s - "$WORK_DIR/files/$file" \
            || fail "nginx serves different bytes for $file than signet-server"
    done
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
# QUIET_TIMEOUT seconds, and prints the last idle percentage measured.
wait_for_quiet() {
    local idle deadline=$((SECONDS + QUIET_TIMEOUT))
    idle=$(cpu_idle_percent)
    while ((idle < MIN_IDLE_PERCENT && SECONDS < deadline)); do
        log "CPU only $idle% idle; waiting for $MIN_IDLE_PERCENT% (at most until ${QUIET_TIMEOUT} s have passed)"
        sleep 3
        idle=$(cpu_idle_percent)
    done
    echo "$idle"
}

# Prints the CPU time in clock ticks that each process in PIDS, its running
# children and its exited children have used so far.
cpu_ticks() {
    local pid child total=0 ticks
    for pid in "$@"; do
        # Fields 14 to 17 of /proc/PID/stat are utime, stime, cutime and cstime,
        # counted after the command name in parentheses. cutime and cstime
        # cover exited children that the process has waited for, such as
        # PostgreSQL backends whose client closed the connection.
        ticks=$(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12 + $13 + $14 + $15}')
        total=$((total + ticks))
        for child in $(pgrep -P "$pid" || true); do
            ticks=$(sed 's/.*) //' "/proc/$child/stat" 2>/dev/null | awk '{print $12 + $13}') || ticks=0
            total=$((total + ${ticks:-0}))
        done
    done
    echo "$total"
}

# Prints the number of transactions that the signet database has committed or
# rolled back. Each metadata read that misses signet-server's cache is one.
database_transactions() {
    as_postgres "$PG_BIN/psql" -h "$PG_SOCKET_DIR" -U postgres -d signet -Atc \
        "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'signet'"
}

# Prints the busy CPU time of the whole machine in clock ticks: the user,
# nice, system, irq and softirq fields of /proc/stat.
machine_busy_ticks() {
    awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat
}

# Runs one wrk load and stores wrk's RESULT line in RESULTS[server,file,connections].
# The stored line also has the CPU idle percentage before the run, the CPU
# ticks that SERVER_PID, PostgreSQL and other processes used during the run,
# and the number of database transactions during the run.
declare -A RESULTS
run_wrk() {
    local server=$1 port=$2 server_pid=$3 file=$4 connections=$5
    local url=http://127.0.0.1:$port/v2/$GUN/_trust/tuf/$file
    local output=$WORK_DIR/wrk/$server-$file-c$connections.txt
    local times_file=$WORK_DIR/wrk/$server-$file-c$connections.times
    local idle server_ticks postgres_ticks busy_ticks transactions wrk_ticks other_ticks result

    idle=$(wait_for_quiet)
    server_ticks=$(cpu_ticks "$server_pid")
    postgres_ticks=$(cpu_ticks "$POSTMASTER_PID")
    transactions=$(database_transactions)
    busy_ticks=$(machine_busy_ticks)

    log "wrk -t$WRK_THREADS -c$connections -d$DURATION --latency $url (CPU $idle% idle before)"
    # Bash's time keyword writes wrk's user and system CPU seconds to times_file.
    local TIMEFORMAT='%3U %3S'
    { time wrk -t"$WRK_THREADS" -c"$connections" -d"$DURATION" --latency -s "$BENCH_DIR/wrk_summary.lua" "$url" \
        >"$output"; } 2>"$times_file"

    busy_ticks=$(($(machine_busy_ticks) - busy_ticks))
    server_ticks=$(($(cpu_ticks "$server_pid") - server_ticks))
    postgres_ticks=$(($(cpu_ticks "$POSTMASTER_PID") - postgres_ticks))
    wrk_ticks=$(awk -v hz="$CLOCK_TICKS" 'END {printf "%.0f", ($1 + $2) * hz}' "$times_file")
    # The rest of the busy time went to other processes and to kernel work
    # that no process is charged for, such as some loopback network processing.
    other_ticks=$((busy_ticks - server_ticks - postgres_ticks - wrk_ticks))

    if [[ $server == signet ]]; then
        # A PostgreSQL backend publishes its transaction counts at most once a
        # second, and a backend that turned idle within that second publishes
        # them 10 s later (PGSTAT_MIN_INTERVAL and PGSTAT_IDLE_INTERVAL in
        # pgstat.c of PostgreSQL 15 and later), so wait before reading them.
        sleep "$STATS_FLUSH_WAIT"
    fi
    # Subtract the query of the first database_transactions call.
    transactions=$(($(database_transactions) - transactions - 1))

    result=$(grep '^RESULT ' "$output") || fail "wrk printed no RESULT line; see $output"
    RESULTS[$server,$file,$connections]="$result idle_before=$idle server_ticks=$server_ticks"
    RESULTS[$server,$file,$connections]+=" postgres_ticks=$postgres_ticks wrk_ticks=$wrk_ticks other_ticks=$other_ticks"
    RESULTS[$server,$file,$connections]+=" transactions=$transactions"
}

# Prints the value of KEY from a RESULT line such as "RESULT requests=10 rps=5.0".
field() {
    local line=$1 key=$2
    sed -n "s/.* $key=\([^ ]*\).*/\1/p" <<<"$line"
}

error_count() {
    local line=$1 key total=0
    for key in connect_errors read_errors write_errors status_errors timeouts; do
        total=$((total + $(field "$line" "$key")))
    done
    echo "$total"
}

print_machine() {
    echo "## Machine"
    echo
    echo "- CPU: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    echo "- Memory: $(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "- Kernel: $(uname -sr)"
    echo "- Runs started: $RUNS_STARTED"
    echo "- Load average before the runs: $LOAD_BEFORE"
    echo "- Load average after the runs: $(cut -d ' ' -f 1-3 /proc/loadavg)"
    echo "- signet-server: $SERVER_SOURCE"
    echo "- Tools: $(wrk --version 2>&1 | head -n 1 | cut -d ' ' -f 1-2), $(nginx -v 2>&1 | sed 's/^nginx version: //'), $("$PG_BIN/postgres" --version)"
    echo "- wrk, nginx, signet-server and PostgreSQL share the same cores."
    echo
}

print_results() {
    local file connections nginx signet nginx_rps signet_rps nginx_p99 signet_p99 rps_ratio p99_ratio
    echo "## Results"
    echo
    echo "wrk -t$WRK_THREADS -d$DURATION --latency; p99 in milliseconds; errors are wrk's socket errors, timeouts and non-2xx/3xx responses."
    echo
    echo "| file | connections | nginx req/s | nginx p99 | signet req/s | signet p99 | req/s ratio | p99 ratio | nginx errors | signet errors |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for file in "${FILES[@]}"; do
        for connections in "${CONNECTION_COUNTS[@]}"; do
            nginx=${RESULTS[nginx,$file,$connections]}
            signet=${RESULTS[signet,$file,$connections]}
            nginx_rps=$(field "$nginx" rps)
            signet_rps=$(field "$signet" rps)
            nginx_p99=$(field "$nginx" p99_us)
            signet_p99=$(field "$signet" p99_us)
            rps_ratio=$(awk -v a="$signet_rps" -v b="$nginx_rps" 'BEGIN {printf "%.2f", a / b}')
            p99_ratio=$(awk -v a="$signet_p99" -v b="$nginx_p99" 'BEGIN {printf "%.2f", a / b}')
            printf '| %s (%d bytes) | %d | %.0f | %.2f | %.0f | %.2f | %s | %s | %d | %d |\n' \
                "$file" "$(stat -c %s "$WORK_DIR/files/$file")" "$connections" \
                "$nginx_rps" "$(awk -v us="$nginx_p99" 'BEGIN {print us / 1000}')" \
                "$signet_rps" "$(awk -v us="$signet_p99" 'BEGIN {print us / 1000}')" \
                "$rps_ratio" "$p99_ratio" "$(error_count "$nginx")" "$(error_count "$signet")"
        done
    done
    echo
}

# Prints the CPU time per request, in microseconds, from a stored result.
# TICKS_KEY is server_ticks or postgres_ticks.
cpu_per_request_us() {
    local line=$1 ticks_key=$2
    awk -v ticks="$(field "$line" "$ticks_key")" -v requests="$(field "$line" requests)" -v hz="$CLOCK_TICKS" \
        'BEGIN {printf "%.1f", (requests > 0) ? ticks * 1e6 / hz / requests : 0}'
}

# Prints ticks from a stored result as CPU seconds.
ticks_to_seconds() {
    local line=$1 ticks_key=$2
    awk -v ticks="$(field "$line" "$ticks_key")" -v hz="$CLOCK_TICKS" 'BEGIN {printf "%.1f", ticks / hz}'
}

print_cpu() {
    local file connections server line
    echo "CPU time per request in microseconds, from utime + stime in /proc ($CLOCK_TICKS ticks per second)."
    echo "The PostgreSQL columns cover the signet run: PostgreSQL's CPU time per signet request, and its"
    echo "transactions, one for each read that missed signet-server's in-memory cache."
    echo

    echo "| file | connections | nginx CPU/req | signet CPU/req | PostgreSQL CPU/req | PostgreSQL transactions |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: |"
    for file in "${FILES[@]}"; do
        for connections in "${CONNECTION_COUNTS[@]}"; do
            echo "| $file | $connections | $(cpu_per_request_us "${RESULTS[nginx,$file,$connections]}" server_ticks) |" \
                "$(cpu_per_request_us "${RESULTS[signet,$file,$connections]}" server_ticks) |" \
                "$(cpu_per_request_us "${RESULTS[signet,$file,$connections]}" postgres_ticks) |" \
                "$(field "${RESULTS[signet,$file,$connections]}" transactions) |"
        done
    done
    echo

    echo "CPU seconds used during each run (2 cores, so at most 2 s per second of the run). \"other\" is"
    echo "the machine's busy time minus wrk, the server under load and PostgreSQL: other processes and"
    echo "kernel work that no process is charged for. Idle is the machine's CPU idle percentage in the"
    echo "2 seconds before the run."
    echo
    echo "| server | file | connections | idle before | wrk | server | PostgreSQL | other |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    for file in "${FILES[@]}"; do
        for connections in "${CONNECTION_COUNTS[@]}"; do
            for server in nginx signet; do
                line=${RESULTS[$server,$file,$connections]}
                echo "| $server | $file | $connections | $(field "$line" idle_before)% |" \
                    "$(ticks_to_seconds "$line" wrk_ticks) | $(ticks_to_seconds "$line" server_ticks) |" \
                    "$(ticks_to_seconds "$line" postgres_ticks) | $(ticks_to_seconds "$line" other_ticks) |"
            done
        done
    done
    echo
}

print_targets() {
    local file connections nginx signet rps_met p99_met
    echo "## Targets"
    echo
    for file in "${FILES[@]}"; do
        for connections in "${CONNECTION_COUNTS[@]}"; do
            nginx=${RESULTS[nginx,$file,$connections]}
            signet=${RESULTS[signet,$file,$connections]}
            rps_met=$(awk -v a="$(field "$signet" rps)" -v b="$(field "$nginx" rps)" -v min="$MIN_RPS_RATIO" \
                'BEGIN {print (a >= min * b) ? "met" : "MISSED"}')
            p99_met=$(awk -v a="$(field "$signet" p99_us)" -v b="$(field "$nginx" p99_us)" -v max="$MAX_P99_RATIO" \
                'BEGIN {print (a <= max * b) ? "met" : "MISSED"}')
            echo "- $file, $connections connections: req/s >= $MIN_RPS_RATIO x nginx $rps_met; p99 <= $MAX_P99_RATIO x nginx $p99_met"
        done
    done
    local rss_met
    rss_met=$(awk -v kb="$PEAK_RSS_KB" -v max="$MAX_RSS_MB" 'BEGIN {print (kb * 1024 < max * 1e6) ? "met" : "MISSED"}')
    echo "- signet-server peak RSS < $MAX_RSS_MB MB: $rss_met"
    echo
}

print_server_state() {
    echo "## signet-server"
    echo
    echo "- Peak RSS (VmHWM) after the runs: $((PEAK_RSS_KB / 1024)) MiB ($PEAK_RSS_KB kB); before the runs: $((RSS_BEFORE_KB / 1024)) MiB"
    echo "- RSS (VmRSS) after the runs: $(($(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$SIGNET_PID/status") / 1024)) MiB"
    echo "- Server log: $(wc -l <"$WORK_DIR/signet.log") lines, $(du -h "$WORK_DIR/signet.log" | cut -f 1)"
    # The text log has ANSI color codes around the level, so strip them before matching.
    local problems
    problems=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK_DIR/signet.log" | grep -E ' (WARN|ERROR) ' || true)
    if [[ -n $problems ]]; then
        echo "- Warnings and errors in the server log: $(wc -l <<<"$problems"), first ones:"
        echo
        echo '```'
        head -n 5 <<<"$problems"
        echo '```'
    else
        echo "- Warnings and errors in the server log: none"
    fi
    echo
    echo "Requests by status from /metrics:"
    echo
    echo '```'
    curl -fsS --max-time 10 "http://127.0.0.1:$SIGNET_PORT/metrics" | grep '^signet_http_requests_total' || true
    echo '```'
}

vm_hwm_kb() {
    sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$SIGNET_PID/status"
}

main() {
    trap cleanup EXIT
    trap 'exit 130' INT TERM

    check_requirements
    build_server
    prepare_venv
    make_work_dir
    start_postgres
    start_signet
    publish_and_save_files
    start_nginx

    LOAD_BEFORE=$(cut -d ' ' -f 1-3 /proc/loadavg)
    RUNS_STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')
    RSS_BEFORE_KB=$(vm_hwm_kb)
    local file connections
    for file in "${FILES[@]}"; do
        for connections in "${CONNECTION_COUNTS[@]}"; do
            run_wrk nginx "$NGINX_PORT" "$NGINX_PID" "$file" "$connections"
            run_wrk signet "$SIGNET_PORT" "$SIGNET_PID" "$file" "$connections"
        done
    done
    kill -0 "$SIGNET_PID" 2>/dev/null || fail "signet-server exited during the runs; see $WORK_DIR/signet.log"
    PEAK_RSS_KB=$(vm_hwm_kb)

    echo "# signet-server and nginx serving TUF metadata"
    echo
    print_machine
    print_results
    print_cpu
    print_targets
    print_server_state
}

# exit on the same line, so that bash reads no further if this file changes during a run.
main "$@"; exit
