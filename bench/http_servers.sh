# shellcheck shell=bash disable=SC2154  # $root, $build_dir, $work: the caller's
# Sourced by bench/http_compare and bench/idle_rss: builds squall's hello and
# starts and stops the three HTTP servers they compare, one at a time, on
# 127.0.0.1 and a free high port chosen by the OS:
#
#   squall      $build_dir/examples/hello --port N --threads 1
#   squall-web  $build_dir/examples/hello_web --port N (Application + RequestHandler)
#   nginx    one worker, bench/peers/nginx.conf.template in a temporary prefix
#   tornado  bench/peers/tornado_hello.py under Debian's /usr/bin/python3
#
# Expects: $root (the source tree), $build_dir, $work (a scratch directory
# the caller removes), and a `log` function. Sets SERVER_PID and SERVER_PORT.
# Not executable on its own.

hs_tool=$root/bench/http_compare_report.py
# Debian's interpreter: it has python3-tornado, and it starts in a few tens of
# milliseconds where a version-manager shim may take a second or more.
if [[ -x /usr/bin/python3 ]]; then hs_python=/usr/bin/python3; else hs_python=python3; fi
tornado_python=${TORNADO_PYTHON:-/usr/bin/python3}
hello_binary=$build_dir/examples/hello
hello_web_binary=$build_dir/examples/hello_web
SERVER_PID=
SERVER_PORT=
SERVER_NAME=

# Installs the Debian packages (nginx-light, wrk, python3-tornado, ...) the
# comparison needs, through the project's own script.
hs_setup() {
  "$root/scripts/setup-deps"
}

# Builds examples/hello and examples/hello_web with the release preset (or in
# $build_dir when it is another tree). Returns non-zero when there is no hello to build or the
# build fails; the caller then runs the peers alone.
hs_build_hello() {
  if [[ ! -f $root/examples/hello.cpp ]]; then
    log "examples/hello.cpp does not exist yet: squall's columns will show '-'"
    return 1
  fi
  local out=$work/build-hello.log
  log "building hello ($build_dir)..."
  if [[ $(realpath -m "$build_dir") == "$(realpath -m "$root/build/release")" ]]; then
    (cd "$root" && cmake --preset release && cmake --build --preset release --target hello hello_web) >"$out" 2>&1
  else
    cmake --build "$build_dir" --target hello hello_web >"$out" 2>&1
  fi
  local status=$?
  if ((status != 0)) || [[ ! -x $hello_binary ]]; then
    log "building hello failed (squall's columns will show '-'); the end of the log:"
    tail -n 30 "$out" >&2
    return 1
  fi
  return 0
}

# The servers that can run here: squall's only when their binaries exist.
hs_available() {
  local name
  for name in "$@"; do
    case $name in
      squall) [[ -x $hello_binary ]] && echo squall ;;
      squall-web) [[ -x $hello_web_binary ]] && echo squall-web ;;
      nginx | tornado) echo "$name" ;;
    esac
  done
}

# hs_start NAME CPU: starts one server pinned to CPU and waits until it
# accepts connections. Returns non-zero (and leaves nothing running) if it
# does not come up within 30 seconds.
hs_start() {
  local name=$1 cpu=$2
  local pin=()
  [[ -n $cpu ]] && pin=(taskset -c "$cpu")
  SERVER_NAME=$name
  SERVER_PORT=$("$hs_python" "$hs_tool" free-port) || return 1
  local logfile=$work/$name.log
  case $name in
    squall)
      "${pin[@]}" "$hello_binary" --port "$SERVER_PORT" --threads 1 >"$logfile" 2>&1 &
      ;;
    squall-web)
      "${pin[@]}" "$hello_web_binary" --port "$SERVER_PORT" >"$logfile" 2>&1 &
      ;;
    nginx)
      local prefix=$work/nginx
      rm -rf "$prefix"
      mkdir -p "$prefix"
      sed -e "s|@PREFIX@|$prefix|g" -e "s|@PORT@|$SERVER_PORT|g" \
        -e "s|@NOFILE@|$(ulimit -n)|g" \
        "$root/bench/peers/nginx.conf.template" >"$prefix/nginx.conf"
      "${pin[@]}" nginx -p "$prefix/" -c "$prefix/nginx.conf" -e "$prefix/error.log" \
        >"$logfile" 2>&1 &
      ;;
    tornado)
      "${pin[@]}" "$tornado_python" "$root/bench/peers/tornado_hello.py" \
        --port "$SERVER_PORT" >"$logfile" 2>&1 &
      ;;
    *)
      log "unknown server $name"
      return 1
      ;;
  esac
  SERVER_PID=$!
  if ! "$hs_python" "$hs_tool" wait-port "$SERVER_PORT" --pid "$SERVER_PID" --timeout 30; then
    log "$name did not start; its output:"
    tail -n 20 "$logfile" >&2
    [[ $name == nginx ]] && tail -n 20 "$work/nginx/error.log" >&2 2>/dev/null
    hs_stop
    return 1
  fi
  # nginx's worker is forked by the master: wait until it is there too.
  if [[ $name == nginx ]]; then
    local i
    for ((i = 0; i < 50; i++)); do
      [[ -n $(hs_children "$SERVER_PID") ]] && break
      sleep 0.1
    done
  fi
  return 0
}

# The direct children of a pid (nginx's workers), one per line.
hs_children() {
  "$hs_python" "$hs_tool" children "$1"
}

# utime+stime of the pids (all their threads) in clock ticks; a pid that
# is gone counts zero. Pure bash: it runs just before and after each load run.
hs_cpu_ticks() {
  local pid line total=0
  local -a f
  for pid in "$@"; do
    read -r line 2>/dev/null </proc/"$pid"/stat || continue
    read -r -a f <<<"${line##*) }"  # the fields after the command name
    ((total += f[11] + f[12]))      # fields 14 and 15 of proc(5): utime, stime
  done
  echo "$total"
}

# The server's pids: the process started and its children (nginx's worker).
hs_pids() {
  [[ -n $SERVER_PID ]] || return 0
  echo "$SERVER_PID"
  hs_children "$SERVER_PID"
}

# Stops the running server, if any: SIGQUIT for nginx (graceful), SIGTERM for
# the others; SIGKILL after 10 seconds. Then checks that none of its
# processes is left. Returns non-zero if it had to kill or something stayed.
hs_stop() {
  [[ -n $SERVER_PID ]] || return 0
  local pid=$SERVER_PID name=$SERVER_NAME status=0 i p
  local -a pids
  mapfile -t pids < <(hs_pids)
  SERVER_PID=
  if kill -0 "$pid" 2>/dev/null; then
    if [[ $name == nginx ]]; then kill -QUIT "$pid"; else kill -TERM "$pid"; fi 2>/dev/null
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name (pid $pid) did not stop within 10 s of its signal: killing it"
      kill -KILL "${pids[@]}" 2>/dev/null
      status=1
    fi
  fi
  wait "$pid" 2>/dev/null
  # The worker exits with its master; give it a moment, then make sure.
  for ((i = 0; i < 50; i++)); do
    local left=()
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && left+=("$p"); done
    ((${#left[@]} == 0)) && break
    sleep 0.1
  done
  if ((${#left[@]})); then
    log "$name left processes ${left[*]} behind: killing them"
    kill -KILL "${left[@]}" 2>/dev/null
    status=1
  fi
  return $status
}
