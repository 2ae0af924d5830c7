#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One JSON vocabulary across the five tools (snapkit(7), JSON; tests/json-vocabulary.tsv):
# every tool and mode that reports with --json is run, every key path of its output is
# collected, and the test fails on a key not in the vocabulary, a key whose JSON type differs
# from the vocabulary's, a number whose key does not carry its unit (or name what it counts),
# and on a man page table that lists other keys than the vocabulary file.
# A new mode is one `report NAME COMMAND...` line below (its JSON on stdout; for a command
# that writes its report to a file, `report_file NAME FILE COMMAND...`).
set -u
BIN=${1:-$SNAPKIT_BIN}
ROOT=${SNAPKIT_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
TD=${SNAPKIT_TESTDATA:-$ROOT/testdata}
W=${SNAPKIT_WORK:-$(mktemp -d)}
rm -rf "$W" && mkdir -p "$W/json" && cd "$W" || exit 1
fail() { echo "FAIL: $*" >&2; exit 1; }
source "$ROOT/tests/lib/redis.bash"
# redis-server is a declared dependency (scripts/deps.txt): its absence is a failure here.
redis_available || fail "redis-server is not installed (scripts/deps.txt)"

bad=0
report() {  # report NAME COMMAND... : the command's stdout is one JSON document
  local name=$1; shift
  "$@" > "json/$name.json" 2> "json/$name.err" || { echo "FAIL: $name: exit $?: $* ($(head -c 400 "json/$name.err"))"; bad=1; }
}
report_file() {  # report_file NAME FILE COMMAND... : the command writes its report to FILE
  local name=$1 file=$2; shift 2
  "$@" > "json/$name.out" 2> "json/$name.err" || { echo "FAIL: $name: exit $?: $* ($(head -c 400 "json/$name.err"))"; bad=1; }
  cp "$file" "json/$name.json" 2> /dev/null || { echo "FAIL: $name: no report in $file"; bad=1; }
}

cp "$TD/image.mem" img && chmod 600 img
mkdir -p dram ssd dax

# snap-record: both host methods; --json (the command's stdout goes to stderr) and --report.
report record-pagemap "$BIN/snap-record" -q -m pagemap --mem img -o r.ls --json -- "$BIN/rwload" img --seed 3 --reads 40 --writes 10
report_file record-mincore rm.json "$BIN/snap-record" -q -m mincore --keep-cache --mem img -o rm.ls --report rm.json -- "$BIN/rwload" img --seed 4 --reads 40 --writes 10
# The bpf method (root and kernel BTF, as on CI; elsewhere its keys go unchecked, said below).
if [ "$(id -u)" = 0 ] && [ -r /sys/kernel/btf/vmlinux ]; then
  report record-bpf "$BIN/snap-record" -q -m bpf --mem img -o rb.ls --json -- "$BIN/rwload" img --seed 5 --reads 40 --writes 10
  report stat-recorded-bpf "$BIN/snap-stat" --json rb.ls
else
  echo "note: snap-record -m bpf not run (needs root and /sys/kernel/btf/vmlinux): its keys are not checked"
fi
# snap-split: one loading set, a merge of two.
report split "$BIN/snap-split" -q --mem img -o s.split --json r.ls
report split-merge "$BIN/snap-split" -q --mem img -o sm.split --merge union --json "$TD/pagemap.ls" "$TD/uffd.ls"
# snap-place: default tiers, compressed, dry run.
report place "$BIN/snap-place" -q s.split -o p.placed --json --tier rw=dram --tier ro=dax:"$W/dax" --tier cold=file:"$W/ssd"
report place-zstd "$BIN/snap-place" -q s.split -o z.placed --json --compress --frame-size 16K
report place-dry "$BIN/snap-place" -q s.split --dry-run --json
# snap-stat: every artifact kind, both comparisons, --verify, --mem.
for ls in mincore pagemap uffd bpf; do report "stat-$ls" "$BIN/snap-stat" --json "$TD/$ls.ls"; done
report stat-split "$BIN/snap-stat" --json --verify --mem img s.split
report stat-placed "$BIN/snap-stat" --json --verify p.placed
report stat-placed-zstd "$BIN/snap-stat" --json z.placed
report stat-placed-testdata "$BIN/snap-stat" --json "$TD/placed/image.placed"
report stat-recorded-pagemap "$BIN/snap-stat" --json r.ls
report stat-recorded-mincore "$BIN/snap-stat" --json rm.ls
report stat-compare-loadsets "$BIN/snap-stat" --json --compare "$TD/pagemap.ls" r.ls
report stat-compare-splits "$BIN/snap-stat" --json --compare s.split sm.split
report stat-many "$BIN/snap-stat" --json "$TD/mincore.ls" "$TD/pagemap.ls" "$TD/pagemap.split" "$TD/placed/image.placed"
report stat-list-loadset "$BIN/snap-stat" --json --list "$TD/pagemap.ls"
report stat-list-split "$BIN/snap-stat" --json --list "$TD/pagemap.split"
report stat-list-placed "$BIN/snap-stat" --json --list "$TD/placed/image.placed"
report stat-map-split "$BIN/snap-stat" --json --map "$TD/pagemap.split"
report stat-map-loadset "$BIN/snap-stat" --json --map "$TD/pagemap.ls"
# snap-restore: every front-end, dry and real.
report restore-dry-exec "$BIN/snap-restore" p.placed --strategy tiered --image img --dry-run --json
report restore-dry-serve "$BIN/snap-restore" p.placed --strategy reap --serve "$W/dry.sock" --dry-run --json
report restore-dry-materialize "$BIN/snap-restore" p.placed --materialize "$W/dry.img" --dry-run --json
report restore-materialize "$BIN/snap-restore" z.placed --materialize m.img --json
for s in vanilla reap faasnap tiered; do
  report_file "restore-exec-$s" "exec-$s.json" "$BIN/snap-restore" p.placed --strategy $s --image img --json -o "exec-$s.json" --exec -- "$BIN/maptest" img --writes 20
done
report_file restore-exec-record exec-rec.json "$BIN/snap-restore" p.placed --image img --json -o exec-rec.json --exec --record er.ls -- "$BIN/maptest" img --writes 20
report stat-uffd-recorded "$BIN/snap-stat" --json er.ls
serve() {  # serve NAME PLACED ARGS... : --serve with fcclient as Firecracker
  local name=$1 placed=$2; shift 2
  timeout 120 "$BIN/snap-restore" "$placed" --serve "$W/$name.sock" --json --accept-timeout 30 "$@" > "json/$name.json" 2> "json/$name.err" &
  local spid=$!
  timeout 120 "$BIN/fcclient" --socket "$W/$name.sock" --image img --regions-mib 1 --json > "$name.client" 2> "$name.client.err"
  local crc=$?
  wait $spid || { echo "FAIL: $name: snap-restore --serve exit $? ($(head -c 400 "json/$name.err"))"; bad=1; }
  [ $crc = 0 ] || { echo "FAIL: $name: fcclient exit $crc ($(head -c 400 "$name.client.err"))"; bad=1; }
}
serve restore-serve-tiered p.placed --strategy tiered
serve restore-serve-record p.placed --strategy vanilla --record sr.ls

# The pool modes on a throwaway redis-server.
redis_start_plain PORT || fail "cannot start redis-server"
U="redis://127.0.0.1:$PORT/v"
report place-pool "$BIN/snap-place" -q s.split -o pool.placed --json --tier rw=dram --tier ro="$U" --tier cold="$U" --name fn
report stat-pool "$BIN/snap-stat" --json --pool pool.placed
report_file restore-exec-pool exec-pool.json "$BIN/snap-restore" pool.placed --strategy tiered --image img --json -o exec-pool.json --exec -- "$BIN/maptest" img
serve restore-serve-pool pool.placed --strategy tiered
report restore-materialize-pool "$BIN/snap-restore" pool.placed --pool "$U" --materialize pool.img --json
report pool-list "$BIN/snap-place" --pool "$U" --list --json
report pool-fetch "$BIN/snap-place" --pool "$U" --fetch fn -o fetched.placed --json
report pool-calibrate "$BIN/snap-place" --pool "$U" --calibrate --json
report pool-remove "$BIN/snap-place" --pool "$U" --remove fn --json
report pool-collect "$BIN/snap-place" --pool "$U" --collect --json

# An error object (--json): {"error", "exit_code", "hint"}.
"$BIN/snap-stat" --json no-such-file > json/error.json 2> /dev/null

python3 - "$ROOT/tests/json-vocabulary.tsv" "$ROOT/man/snapkit.7" json <<'PY' || bad=1
import json, os, re, sys
tsv, man, d = sys.argv[1:4]
UNITS = ("bytes", "pages", "ns", "us", "ms", "s", "gbps")
PLAIN = ("ratio", "id", "status", "address", "setting")
vocab, problems = {}, []
for n, line in enumerate(open(tsv), 1):
    if line.startswith("#") or not line.strip():
        continue
    f = line.rstrip("\n").split("\t")
    if len(f) != 4:
        problems.append(f"{tsv}:{n}: not 4 tab-separated fields"); continue
    key, typ, unit, meaning = f
    if key in vocab: problems.append(f"{tsv}:{n}: {key} twice")
    if not re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", key): problems.append(f"{tsv}:{n}: {key} is not snake_case")
    vocab[key] = (typ.split("|"), unit)
    base = [t for t in vocab[key][0] if t != "null"]
    numeric = base[0] in ("integer", "number") or (base[0] in ("map", "map2") and unit != "-")
    # The rule itself: a number carries its unit, or names what it counts, or is dimensionless.
    if numeric:
        if unit in UNITS:
            if not key.endswith("_" + unit): problems.append(f"{tsv}:{n}: {key} is in {unit} but does not end with _{unit}")
        elif unit.startswith("count:"):
            noun = unit[6:]  # (a map of counts is named by what it maps: events_by_source, matrix)
            if base[0] not in ("map", "map2") and key != noun and not key.endswith("_" + noun): problems.append(f"{tsv}:{n}: {key} counts {noun} but is not named so")
        elif unit not in PLAIN:
            problems.append(f"{tsv}:{n}: {key}: unit '{unit}' is none of {UNITS}, count:NOUN, {PLAIN}")
    else:
        if unit != "-" and base[0] not in ("map", "map2"): problems.append(f"{tsv}:{n}: {key} is a {typ} with a unit")
        # a non-number must not look like one
        if base[0] in ("string", "boolean", "array", "object") and any(key.endswith("_" + u) for u in UNITS) and key != "image_fingerprint":
            problems.append(f"{tsv}:{n}: {key} ends with a unit but is a {typ}")

def jtype(v):
    if v is None: return "null"
    if isinstance(v, bool): return "boolean"
    if isinstance(v, int): return "integer"
    if isinstance(v, float): return "number"
    if isinstance(v, str): return "string"
    if isinstance(v, list): return "array"
    return "object"

seen = {}
def walk(v, path, src, names=0):
    """names: how many levels of this object's keys are names (a map), not vocabulary."""
    if isinstance(v, list):
        for x in v: walk(x, path + "[]", src)
        return
    if not isinstance(v, dict): return
    for k, x in v.items():
        p = path + "." + k
        if names:
            walk(x, p, src, names - 1)
            continue
        seen.setdefault(k, set()).add(src)
        if k not in vocab:
            problems.append(f"{src}: {p}: not in the vocabulary"); continue
        types, unit = vocab[k]
        t = jtype(x)
        ok = t in types or (t == "integer" and "number" in types) or (t == "object" and ("map" in types or "map2" in types))
        if not ok: problems.append(f"{src}: {p}: {t}, the vocabulary says {'|'.join(types)}")
        if k == "meta": continue  # the artifact's metadata: checked below as recorded
        if t == "object":
            walk(x, p, src, 2 if "map2" in types else 1 if "map" in types else 0)
        elif t == "array":
            walk(x, p, src)

files = sorted(f for f in os.listdir(d) if f.endswith(".json"))
if len(files) < 30: problems.append(f"only {len(files)} reports collected")
for f in files:
    text = open(os.path.join(d, f)).read()
    try:
        docs = [json.loads(text)]
    except ValueError as e:
        try:  # JSON Lines: one document a line (snap-stat with several files)
            docs = [json.loads(l) for l in text.splitlines() if l.strip()]
        except ValueError:
            problems.append(f"{f}: neither one JSON document nor JSON Lines ({e}): {text[:200]!r}"); continue
    for doc in docs:
        if not isinstance(doc, (dict, list)) or not doc: problems.append(f"{f}: not a JSON object or array"); continue
        walk(doc, "", f)
        # The recorded metadata (loading sets' and splits' META) follows the vocabulary too.
        if isinstance(doc, dict) and isinstance(doc.get("meta"), dict): walk(doc["meta"], ".meta", f)

# The man page's list (.TP, .BR KEY " (TYPE, UNIT)", meaning) has exactly the vocabulary's keys.
sec = open(man).read().split(".SH JSON", 1)
if len(sec) < 2:
    problems.append(f"{man}: no JSON section")
else:
    body = sec[1].split("\n.SH ", 1)[0]
    rows = re.findall(r"^\.TP\n\.BR ([a-z][a-z0-9_]*) ", body, re.M)
    listed = set(rows)
    for k in sorted(set(vocab) - listed): problems.append(f"{man}: JSON table lacks {k}")
    for k in sorted(listed - set(vocab)): problems.append(f"{man}: JSON table lists {k}, the vocabulary file does not")
    if set(vocab) != listed: problems.append("(scripts/json-vocabulary-man.py rewrites the man page's list from the vocabulary file)")
unused = sorted(set(vocab) - set(seen))
if problems:
    print("\n".join("FAIL: " + p for p in problems[:80]))
    if len(problems) > 80: print(f"FAIL: ... and {len(problems) - 80} more")
    sys.exit(1)
print(f"ok: {len(files)} reports, {len(seen)} distinct keys, all in the vocabulary with their types and units"
      + (f"; not seen in this run: {' '.join(unused)}" if unused else ""))
PY
[ $bad = 0 ] || exit 1
