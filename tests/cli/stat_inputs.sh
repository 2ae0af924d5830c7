#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# snap-stat as a user expects: N files give N descriptions in argument order (text blocks
# headed by the name; --json one object a line), a comparison only with --compare, a failing
# file among others named on stderr while the rest are described (exit: the highest code);
# every input read once: each artifact kind (loading set, split, placed manifest) through a
# FIFO and on stdin gives what its file gives, in every mode (a hang fails: every run has a
# timeout); and --json honoured by --list, --map, --verify and --mem.
set -u
bin=${1:?bin dir}
td=${SNAPKIT_TESTDATA:?}
work=${SNAPKIT_WORK:-$(mktemp -d)}
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
fail() { echo "FAIL: $*"; exit 1; }
st() { timeout 10 "$bin/snap-stat" "$@"; }  # exit 124 = it hung (an input opened twice)
json_lines() { python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
print(" ".join(str(r.get(sys.argv[1], "-")) for r in rows))' "$1"; }

cp "$td"/mincore.ls "$td"/pagemap.ls "$td"/uffd.ls "$td"/bpf.ls "$td"/pagemap.split . || fail "copy testdata"
"$bin/snap-place" -q pagemap.split -o p.placed --compress --frame-size 16K > /dev/null || fail "snap-place"

# --- N files, N descriptions --------------------------------------------------------------
st mincore.ls pagemap.ls uffd.ls bpf.ls > four.txt 2> err.txt || fail "four loading sets: $(cat err.txt)"
[ "$(grep -oE '^[a-z]+\.ls: loading set \([a-z]+\)' four.txt | tr '\n' ' ')" = \
  "mincore.ls: loading set (mincore) pagemap.ls: loading set (pagemap) uffd.ls: loading set (uffd) bpf.ls: loading set (bpf) " ] ||
  fail "four descriptions, in order, each headed by its name: $(head -c 400 four.txt)"
[ "$(grep -c '^$' four.txt)" = 3 ] || fail "blocks not separated by one empty line each"
grep -q jaccard four.txt && fail "two or more files without --compare were compared"
st mincore.ls pagemap.ls > two.txt || fail "two loading sets"
[ "$(grep -c ': loading set' two.txt)" = 2 ] && ! grep -q jaccard two.txt || fail "two files are two descriptions: $(cat two.txt)"
[ "$(st --json *.ls pagemap.split p.placed | json_lines file)" = "bpf.ls mincore.ls pagemap.ls uffd.ls pagemap.split p.placed" ] ||
  fail "--json: one object a line, in argument order"
[ "$(st --json pagemap.ls pagemap.split p.placed | json_lines kind)" = "loadset split placed" ] || fail "--json kinds"
# The man page's glob example: every loading set.
[ "$(st --json *.ls | wc -l)" = 4 ] || fail "snap-stat --json *.ls"

# A failing file among others: named on stderr, the others described, the highest code.
head -c 700 pagemap.ls > trunc.ls
rc=0; st --json mincore.ls trunc.ls uffd.ls > mixed.json 2> mixed.err || rc=$?
[ $rc = 3 ] || fail "a truncated file among good ones: exit $rc, expected 3"
grep -q '^snap-stat: error: trunc.ls: ' mixed.err || fail "the failing file is not named: $(cat mixed.err)"
[ "$(json_lines file < mixed.json)" = "mincore.ls trunc.ls uffd.ls" ] || fail "the others not described in order: $(cat mixed.json)"
python3 -c '
import json, sys
rows = [json.loads(l) for l in open("mixed.json")]
assert rows[1]["exit_code"] == 3 and "trunc.ls" in rows[1]["error"], rows[1]
assert rows[0]["kind"] == rows[2]["kind"] == "loadset"' || fail "the error object in its place"
rc=0; st mincore.ls missing.ls > /dev/null 2> miss.err || rc=$?
[ $rc = 1 ] && grep -q 'missing.ls' miss.err || fail "a missing file: exit $rc ($(cat miss.err)), expected 1"
rc=0; st missing.ls trunc.ls uffd.ls > worst.txt 2> /dev/null || rc=$?
[ $rc = 3 ] || fail "exit is the highest code (1 and 3 give 3), got $rc"
grep -q '^uffd.ls: loading set' worst.txt || fail "the good file after two bad ones was not described"
# A mode that does not fit one of the files is that file's usage error (2), not the others'.
rc=0; st --mem "$td/image.mem" pagemap.split pagemap.ls > m.txt 2> m.err || rc=$?
[ $rc = 2 ] && grep -q 'pagemap.ls: --mem goes with a split' m.err && grep -q 'every page matches' m.txt ||
  fail "--mem over a split and a loading set: exit $rc, $(cat m.err)"
# -o REPORT: written when every file was described, left alone when one failed.
st -o report.txt mincore.ls uffd.ls || fail "-o with two files"
[ "$(grep -c ': loading set' report.txt)" = 2 ] || fail "-o report lacks a block"
echo old > report.txt
st -o report.txt mincore.ls trunc.ls 2> /dev/null && fail "a failing file gave exit 0"
[ "$(cat report.txt)" = old ] || fail "a failed multi-file run replaced the report"

# --- --compare ----------------------------------------------------------------------------
st --compare mincore.ls uffd.ls | grep -q 'jaccard 1.0000' || fail "--compare of two loading sets"
st --json --compare pagemap.split pagemap.split | python3 -c '
import json, sys; c = json.load(sys.stdin); assert c["kind"] == "split-comparison" and c["agreement"] == 1.0, c' ||
  fail "--compare of two splits"
expect2() { local rc=0; st "$@" > /dev/null 2> e.txt || rc=$?; [ $rc = 2 ] || fail "'$*': exit $rc, expected 2: $(cat e.txt)"; }
expect2 --compare mincore.ls
expect2 --compare mincore.ls uffd.ls bpf.ls
expect2 --compare mincore.ls pagemap.split
expect2 --compare --list mincore.ls uffd.ls
expect2 - -

# --- every input read once: FIFOs and stdin, every kind, every mode ------------------------
# Normalise the name the output gives (the file, the FIFO, or stdin) so that the three compare.
norm() { sed -e "s#$1#NAME#g" -e 's#&lt;stdin&gt;#NAME#g' -e 's#<stdin>#NAME#g' -e 's#"file":"-"#"file":"NAME"#g'; }
modes=("" "--json" "--list" "--json --list" "--map" "--json --map" "--verify" "--json --verify" "--svg @")
check_kind() {  # check_kind FILE [extra modes...]
  local f=$1; shift
  local all=("${modes[@]}" "$@")
  for mode in "${all[@]}"; do
    local m=${mode//@/out.svg}
    # shellcheck disable=SC2086
    st $m "$f" > file.out 2> file.err || fail "'$m $f': $(cat file.err)"
    [ -s file.out ] || fail "'$m $f' printed nothing"
    [[ $mode == *@* ]] && mv out.svg file.svg
    rm -f fifo && mkfifo fifo
    cat "$f" > fifo & local writer=$!
    local rc=0
    # shellcheck disable=SC2086
    st $m fifo > fifo.out 2> fifo.err || rc=$?
    kill $writer 2> /dev/null; wait $writer 2> /dev/null
    [ $rc = 124 ] && fail "'$m' on a FIFO of $f hung"
    [ $rc = 0 ] || fail "'$m' on a FIFO of $f: exit $rc: $(cat fifo.err)"
    cmp -s <(norm "$f" < file.out) <(norm fifo < fifo.out) || fail "'$m' on a FIFO of $f differs from the file's"
    if [[ $mode == *@* ]]; then
      cmp -s <(norm "$f" < file.svg) <(norm fifo < out.svg) || fail "'$m' on a FIFO of $f: another SVG"
    fi
    rc=0
    # shellcheck disable=SC2086
    st $m - < "$f" > stdin.out 2> stdin.err || rc=$?
    [ $rc = 0 ] || fail "'$m -' with $f on stdin: exit $rc: $(cat stdin.err)"
    cmp -s <(norm "$f" < file.out) <(norm @none@ < stdin.out) || fail "'$m -' with $f on stdin differs from the file's"
    # And through a pipe, which is what a pipeline gives.
    rc=0
    # shellcheck disable=SC2086
    cat "$f" | st $m - > pipe.out 2> pipe.err || rc=$?
    [ $rc = 0 ] && cmp -s stdin.out pipe.out || fail "'$m -' through a pipe, $f: exit $rc: $(cat pipe.err)"
  done
  echo "ok: $f through a FIFO, stdin and a pipe in ${#all[@]} modes"
}
check_kind pagemap.ls
check_kind pagemap.split "--mem $td/image.mem" "--json --mem $td/image.mem"
check_kind p.placed
# A comparison with one side on stdin and the other a FIFO: each read once, neither hangs.
rm -f fifo && mkfifo fifo
cat uffd.ls > fifo & writer=$!
rc=0; st --compare fifo - < mincore.ls > cf.txt 2> cf.err || rc=$?
kill $writer 2> /dev/null; wait $writer 2> /dev/null
[ $rc = 0 ] && grep -q 'jaccard 1.0000' cf.txt || fail "--compare of a FIFO and stdin: exit $rc: $(cat cf.err)"
cat pagemap.split > fifo & writer=$!
rc=0; st --compare --svg cmp.svg fifo - < pagemap.split > cs.txt 2> cs.err || rc=$?
kill $writer 2> /dev/null; wait $writer 2> /dev/null
[ $rc = 0 ] && [ -s cmp.svg ] || fail "--compare --svg of two splits, FIFO and stdin: exit $rc: $(cat cs.err)"

# --- --json in every mode -----------------------------------------------------------------
st --json --list pagemap.ls > l.json && python3 - "$(st --list pagemap.ls | wc -l)" <<'EOF' || fail "--json --list of a loading set: $(head -c 300 l.json)"
import json, sys
j = json.load(open("l.json"))
assert j["kind"] == "loadset-list" and j["file"] == "pagemap.ls", j
t = j["touches"]
assert len(t) == int(sys.argv[1]) and set(t[0]) == {"page", "access", "rank", "time_ns"}, t[:2]
assert all(x["access"] in ("R", "W", "RW") for x in t)
EOF
st --json --list pagemap.split > r.json && python3 - <<'EOF' || fail "--json --list of a split: $(head -c 300 r.json)"
import json
j = json.load(open("r.json"))
assert j["kind"] == "split-list" and j["page_size_bytes"] == 4096, j
runs = j["runs"]
assert sum(r["run_pages"] for r in runs) == j["image_pages"] == 256
assert all(runs[i]["start_page"] + runs[i]["run_pages"] == runs[i + 1]["start_page"] for i in range(len(runs) - 1))
assert {r["class"] for r in runs} == {"zero", "ro", "rw", "cold"}
EOF
st --json --list p.placed | python3 -c '
import json, sys; j = json.load(sys.stdin); assert j["kind"] == "placed-list" and len(j["runs"]) > 0, j' || fail "--json --list of a placed"
st --json --map --width 16 --rows 4 pagemap.split > map.json && python3 - <<'EOF' || fail "--json --map: $(head -c 300 map.json)"
import json
j = json.load(open("map.json"))
assert j["kind"] == "split-map" and j["row_cells"] == 16 and j["rows"] == 4 and j["cell_pages"] == 4, j
assert len(j["cells"]) == 64 and set(j["cells"]) <= {"zero", "cold", "ro", "rw"}
EOF
# The JSON map and the text map are one picture.
[ "$(st --json --map pagemap.ls | python3 -c '
import json, sys; j = json.load(sys.stdin); g = {"untouched": ".", "read": "r", "written": "W"}
c = "".join(g[x] for x in j["cells"]); print("\n".join(c[i:i + j["row_cells"]] for i in range(0, len(c), j["row_cells"])))')" = \
  "$(st --map pagemap.ls)" ] || fail "--json --map and --map disagree"
st --json --verify --mem "$td/image.mem" pagemap.split | python3 -c '
import json, sys; j = json.load(sys.stdin); assert j["verified"] is True and j["image_check"]["identical"] is True, j' ||
  fail "--json --verify --mem"
echo "ok: snap-stat modes, N files, --compare, FIFOs and stdin"
