#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# pool-refresh.sh: refresh one function's snapshot in a pool, the way a cron job runs it:
# (re-snapshot) -> (re-record) -> split -> place into the pool (only new chunks go up) ->
# swap the current manifest (pool name and local file) -> retire the previous manifest ->
# collect the chunks nothing references. Calls the snap tools only; see --help and snapkit(7).
set -u
umask 077
prog='pool-refresh'

usage() {
  cat << 'EOF'
usage: pool-refresh.sh --function NAME --pool URL --dir DIR (--image FILE | --snapshot CMD)
                       (--loadset LS... | --record CMD [--method M]) [options]

Refresh the snapshot of one function in a snapkit pool, safe to run from cron: split the image
by its loading sets, place every non-zero class into the pool (uploading only the chunks the
pool lacks), register the manifest under the function's name, swap DIR/current (a manifest
file) by rename, unregister the previous manifest and collect the chunks nothing references.

What to refresh:
  --function NAME     the function; also the manifest's name in the pool (required)
  --pool URL          redis://HOST:PORT[,HOST:PORT...]/NAMESPACE (required)
  --dir DIR           state directory: DIR/current, the lock, temporaries (required)
  --image FILE        the memory image, re-snapshotted by the caller before this run
  --snapshot CMD      run CMD (sh -c) to take the snapshot; it must write the image to
                      "$SNAPKIT_IMAGE" (a temporary in DIR, removed afterwards); with --image
                      too, CMD writes FILE itself and SNAPKIT_IMAGE is FILE
  --loadset LS        a loading set to split by (repeatable; then nothing is recorded)
  --record CMD        record a loading set: snap-record --method M --mem IMAGE -- sh -c CMD
                      (CMD restores the snapshot and runs the function; SNAPKIT_IMAGE is set)
  --method M          snap-record method for --record: pagemap (default), mincore, bpf
  --merge SPEC        passed to snap-split (several loading sets)

Placement:
  --tier CLASS=URL    which pool a class goes to (repeatable; default ro, rw and cold on
                      --pool); every class goes to a pool, never to a local part file
  --chunk-size BYTES  passed to snap-place
  --no-collect        retire the previous manifest but leave collection to another job

Running:
  --log FILE          append the log to FILE instead of stderr
  --no-wait           another refresh of the same function holds the lock: exit 75 at once
                      (default: wait for it, at most --lock-timeout seconds)
  --lock-timeout S    seconds to wait for the lock (default 3600; then exit 75)
  --bin DIR           where the snap tools are (default: $PATH)
  -h, --help          this text

Files in DIR: current (the manifest in use, replaced by rename), FUNCTION.lock (flock(1)),
retired (digests still to unregister after an interrupted run), .refresh.* (a run's
temporaries, removed at exit or by the next run).

Exit status: 0 refreshed or unchanged (a run on an unchanged image and loading sets uploads
nothing and logs "unchanged"; re-recorded, "page data unchanged": a recording holds times, so
the manifest is new though no chunk is), 1 a step failed (the log names it), 2 usage, 75 the
lock is held (--no-wait or --lock-timeout), 128+N stopped by signal N (SIGTERM: 143; the
temporaries go, what was swapped stays). One log line per event:
"TIME pool-refresh[PID] FUNCTION: EVENT"; a run that changes nothing (no chunk uploaded, the
same manifest, DIR/current and every other file in DIR left as they were, nothing collected)
logs one line only, "done: unchanged (...)".
EOF
}

fn='' pool='' dir='' image='' snapshot='' record='' method=pagemap merge='' chunk_size='' logfile='' bin=''
no_collect='' no_wait='' lock_timeout=3600
loadsets=() tiers=()
die_usage() { echo "$prog: error: $*" >&2; echo "$prog: hint: see --help" >&2; exit 2; }
need() { [ $# -ge 2 ] || die_usage "$1 needs a value"; }
while [ $# -gt 0 ]; do
  case $1 in
    --function) need "$@"; fn=$2; shift 2 ;;
    --pool) need "$@"; pool=$2; shift 2 ;;
    --dir) need "$@"; dir=$2; shift 2 ;;
    --image) need "$@"; image=$2; shift 2 ;;
    --snapshot) need "$@"; snapshot=$2; shift 2 ;;
    --loadset) need "$@"; loadsets+=("$2"); shift 2 ;;
    --record) need "$@"; record=$2; shift 2 ;;
    --method) need "$@"; method=$2; shift 2 ;;
    --merge) need "$@"; merge=$2; shift 2 ;;
    --tier) need "$@"; tiers+=("$2"); shift 2 ;;
    --chunk-size) need "$@"; chunk_size=$2; shift 2 ;;
    --no-collect) no_collect=1; shift ;;
    --log) need "$@"; logfile=$2; shift 2 ;;
    --no-wait) no_wait=1; shift ;;
    --lock-timeout) need "$@"; lock_timeout=$2; shift 2 ;;
    --bin) need "$@"; bin=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) die_usage "unknown argument '$1'" ;;
  esac
done
[ -n "$fn" ] || die_usage "--function is required"
[ -n "$pool" ] || die_usage "--pool is required"
[ -n "$dir" ] || die_usage "--dir is required"
# The name becomes a file name and a pool key: keep it to a safe alphabet.
case $fn in *[!A-Za-z0-9._-]* | .* ) die_usage "--function '$fn': use letters, digits, '.', '_', '-' (not first '.')" ;; esac
[ ${#fn} -le 128 ] || die_usage "--function: at most 128 characters"
[ -n "$image" ] || [ -n "$snapshot" ] || die_usage "give --image FILE or --snapshot CMD"
[ ${#loadsets[@]} -gt 0 ] || [ -n "$record" ] || die_usage "give --loadset LS or --record CMD"
[ ${#loadsets[@]} -eq 0 ] || [ -z "$record" ] || die_usage "--loadset and --record exclude each other"
case $lock_timeout in '' | *[!0-9]*) die_usage "--lock-timeout '$lock_timeout': a number of seconds" ;; esac
[ ${#tiers[@]} -gt 0 ] || tiers=("ro=$pool" "rw=$pool" "cold=$pool")
# Every class on a pool: a part file in this script's temporaries would go with them, and the
# candidate tiers are exactly these (snap-place's default, dram and file:OUTDIR, would put the
# temporary directory into the manifest, and no two runs would ever give the same digest).
candidates=()
for t in "${tiers[@]}"; do
  case $t in
    [A-Za-z]*=redis://*) ;;
    *) die_usage "--tier '$t': CLASS=redis://... (every class of a refreshed snapshot lives in a pool)" ;;
  esac
  u=${t#*=}
  case " ${candidates[*]} " in *" $u "*) ;; *) candidates+=("$u") ;; esac
done
[ -z "$bin" ] || PATH=$bin:$PATH
for t in snap-split snap-place snap-stat flock; do
  command -v "$t" > /dev/null || { echo "$prog: error: $t: not found" >&2; exit 1; }
done
[ -z "$record" ] || command -v snap-record > /dev/null || { echo "$prog: error: snap-record: not found" >&2; exit 1; }

if [ -n "$logfile" ]; then
  exec 2>> "$logfile" || { echo "$prog: error: --log $logfile: cannot append" >&2; exit 1; }
fi
log() { printf '%s %s[%s] %s: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$prog" "$$" "$fn" "$*" >&2; }
# The steps' lines are held back (each with its time) until the run's outcome is known: a run
# that changes nothing logs one line ("unchanged"), any other outcome every line, in order. A
# cron job every few minutes on an unchanged snapshot then adds one line per run to the log.
# Waiting for the lock, failures and interruptions are logged at once (after what was held).
held=()
event() { held+=("$(printf '%s %s[%s] %s: %s' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$prog" "$$" "$fn" "$*")"); }
flush() { [ ${#held[@]} -eq 0 ] || printf '%s\n' "${held[@]}" >&2; held=(); }

work='' step=setup
cleanup() { [ -z "$work" ] || rm -rf "$work"; }
trap cleanup EXIT
trap 'flush; log "interrupted (SIGINT) at step $step; temporaries removed"; exit 130' INT
trap 'flush; log "interrupted (SIGTERM) at step $step; temporaries removed"; exit 143' TERM
trap 'flush; log "interrupted (SIGHUP) at step $step; temporaries removed"; exit 129' HUP

# fail STEP FILE: log the step and the first lines its tool wrote to stderr, exit 1.
fail() {
  local step=$1 err=${2:-}
  flush
  if [ -n "$err" ] && [ -s "$err" ]; then
    while IFS= read -r line; do log "$step: $line"; done < <(head -5 "$err")
  fi
  log "failed at step $step"
  exit 1
}

mkdir -p "$dir" 2> /dev/null || { log "cannot create --dir $dir"; log "failed at step setup"; exit 1; }
lockfile=$dir/$fn.lock

# --- lock: one refresh per function at a time -----------------------------------------------
step='lock'
exec 9>> "$lockfile" || { log "cannot open lock file $lockfile"; fail lock; }
if ! flock -n 9; then
  if [ -n "$no_wait" ]; then
    log "another refresh of $fn is running (lock $lockfile is held); exiting (--no-wait)"
    exit 75
  fi
  log "another refresh of $fn is running (lock $lockfile is held); waiting up to ${lock_timeout} s"
  if ! flock -w "$lock_timeout" 9; then
    log "lock $lockfile still held after ${lock_timeout} s; giving up"
    exit 75
  fi
fi
event "start (lock $lockfile held)"

# A run that died (SIGKILL, power) left its temporaries; we hold the lock, so they are nobody's.
rm -rf "$dir"/.refresh.* 2> /dev/null
work=$(mktemp -d "$dir/.refresh.XXXXXX") || fail setup

# The hooks get no fd 9: a VMM they leave running must not hold the lock.
# --- snapshot --------------------------------------------------------------------------------
step='snapshot'
if [ -n "$snapshot" ]; then
  target=${image:-$work/image.mem}
  event "snapshot: running the snapshot hook"
  SNAPKIT_IMAGE=$target SNAPKIT_FUNCTION=$fn sh -c "$snapshot" > "$work/snapshot.out" 2> "$work/snapshot.err" < /dev/null 9>&- ||
    fail snapshot "$work/snapshot.err"
  [ -f "$target" ] && [ -s "$target" ] || { flush; log "snapshot: the hook exited 0 but wrote no image at $target"; fail snapshot; }
  image=$target
fi
[ -f "$image" ] || { flush; log "image $image: not a regular file"; fail image; }
event "image $image ($(stat -c %s "$image") bytes)"

# --- record ----------------------------------------------------------------------------------
step='record'
if [ -n "$record" ]; then
  event "record: snap-record --method $method"
  SNAPKIT_IMAGE=$image SNAPKIT_FUNCTION=$fn snap-record --method "$method" --mem "$image" -o "$work/run.ls" \
    -- sh -c "$record" > "$work/record.out" 2> "$work/record.err" < /dev/null 9>&- || fail record "$work/record.err"
  loadsets=("$work/run.ls")
fi

# --- split -----------------------------------------------------------------------------------
step='split'
split_args=(--mem "$image" -o "$work/$fn.split")
[ -z "$merge" ] || split_args+=(--merge "$merge")
snap-split "${split_args[@]}" "${loadsets[@]}" > /dev/null 2> "$work/split.err" || fail split "$work/split.err"
event "split: $(snap-stat "$work/$fn.split" 2> /dev/null | head -1 | sed 's/^[^:]*: //')"

# --- the manifest the pool names now ---------------------------------------------------------
step='list'
# The text form of --list: "DIGEST  N chunks  NAME[,NAME...]".
pool_list() { snap-place --pool "$pool" --list > "$work/list.txt" 2> "$work/list.err"; }
digest_named() { awk -v n="$1" '{ k = split($4, a, ","); for (i = 1; i <= k; i++) if (a[i] == n) print $1 }' "$work/list.txt"; }
names_of() { awk -v d="$1" '$1 == d { print $4 }' "$work/list.txt"; }
pool_list || fail list "$work/list.err"
old=$(digest_named "$fn")
event "current manifest in the pool: ${old:-none}"

# --- place -----------------------------------------------------------------------------------
step='place'
# Digests to unregister once the new manifest is current, kept in DIR/retired so that a run
# interrupted after the swap leaves them for the next one (never a manifest nobody removes).
[ -z "$old" ] || { grep -qx "$old" "$dir/retired" 2> /dev/null || echo "$old" >> "$dir/retired"; }
place_args=("$work/$fn.split" -o "$work/$fn.placed" --name "$fn" --json)
for t in "${tiers[@]}"; do place_args+=(--tier "$t"); done
for u in "${candidates[@]}"; do place_args+=(--tiers "$u"); done
[ -z "$chunk_size" ] || place_args+=(--chunk-size "$chunk_size")
snap-place "${place_args[@]}" > "$work/place.json" 2> "$work/place.err" || fail place "$work/place.err"
# Sums of the per-part pool counters; the JSON is one object, compact or indented.
sum_key() { grep -oE "\"$1\": *[0-9]+" "$work/place.json" | awk -F: '{ s += $2 } END { print s + 0 }'; }
up_bytes=$(sum_key uploaded_bytes) up_chunks=$(sum_key uploaded_chunks) present=$(sum_key present_bytes)
# The manifest's own digest: what the pool now names $fn.
pool_list || fail list "$work/list.err"
new=$(digest_named "$fn")
[ -n "$new" ] || { flush; log "place: the pool names no manifest $fn after placing"; fail place; }
event "place: manifest $new registered as $fn; uploaded $up_chunks chunks ($up_bytes bytes), $present bytes already present"

# --- swap the local manifest -----------------------------------------------------------------
step='swap'
swapped=''
if [ -f "$dir/current" ] && cmp -s "$work/$fn.placed" "$dir/current"; then
  :
else
  mv -f "$work/$fn.placed" "$dir/current" || fail swap
  swapped=1
  event "swap: $dir/current is manifest $new"
fi

# --- retire previous manifests ---------------------------------------------------------------
step='retire'
if [ -s "$dir/retired" ]; then
  : > "$work/retired"
  while IFS= read -r d; do
    [ -n "$d" ] || continue
    if [ "$d" = "$new" ]; then continue; fi
    others=$(names_of "$d")
    if [ -n "$others" ]; then
      # Another function's manifest is byte-identical: it is still in use there.
      event "retire: manifest $d is also named $others; left registered"
      continue
    fi
    if ! grep -q "^$d " "$work/list.txt"; then
      event "retire: previous manifest $d is no longer registered"
    elif snap-place --pool "$pool" --remove "$d" > /dev/null 2> "$work/remove.err"; then
      event "retire: unregistered previous manifest $d"
    else
      echo "$d" >> "$work/retired"
      cat "$work/remove.err" >> "$work/retire.err"
    fi
  done < "$dir/retired"
  if [ -s "$work/retired" ]; then
    mv -f "$work/retired" "$dir/retired"
    fail retire "$work/retire.err"
  fi
  rm -f "$dir/retired"
fi

# --- collect ---------------------------------------------------------------------------------
step='collect'
deleted=0
if [ -z "$no_collect" ]; then
  if snap-place --pool "$pool" --collect > "$work/collect.out" 2> "$work/collect.err"; then
    event "collect: $(sed 's/^collected [^:]*: //' "$work/collect.out" | head -1)"
    deleted=$(sed -n 's/^collected [^:]*: \([0-9]*\) of .*/\1/p' "$work/collect.out" | head -1)
  elif grep -q 'another collection is running' "$work/collect.err"; then
    event "collect: skipped, another collection is running (it collects for us)"
  else
    fail collect "$work/collect.err"
  fi
fi

if [ -n "$old" ] && [ "$old" = "$new" ] && [ "$up_bytes" = 0 ] && [ -z "$swapped" ] && [ "${deleted:-0}" = 0 ]; then
  # Nothing changed: no chunk uploaded, the same manifest named, DIR/current kept (same inode
  # and mtime), nothing collected. One line for the whole run.
  held=()
  log "done: unchanged (manifest $new, 0 bytes uploaded, $dir/current kept)"
  exit 0
fi
flush
if [ -n "$old" ] && [ "$old" = "$new" ] && [ "$up_bytes" = 0 ]; then
  log "done: unchanged (manifest $new, 0 bytes uploaded)"
elif [ -n "$old" ] && [ "$up_bytes" = 0 ]; then
  # Same chunks, another manifest: a re-recorded loading set is never byte-identical (it holds
  # times), and another spelling of the pool is another tier name.
  log "done: page data unchanged (0 bytes uploaded); new manifest $old -> $new"
else
  log "done: refreshed (manifest ${old:-none} -> $new, $up_bytes bytes uploaded)"
fi
exit 0
