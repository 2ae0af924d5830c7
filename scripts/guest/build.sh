#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Build the snapkit proving-ground guest from Debian packages, reproducibly:
#   vmlinux         linux-source-6.1 + tinyconfig + guest/kernel/snapkit.config
#                   + guest/kernel/*.patch (boots on KVM PVM and on real hardware)
#   initramfs.cpio  uncompressed (the guest kernel unpacks it in emulated code
#                   under PVM, so no compression): busybox-static, python3.11 with
#                   only the modules and libraries the functions import, the
#                   runner, the functions, native helpers
#   cmdline         kernel parameters to boot with
#   expected.json   expected answer of every (function, input), computed on the host
#   libnohuge.so    LD_PRELOAD shim that drops MADV_HUGEPAGE on file mappings
#   key             hash of vmlinux, initramfs and cmdline; snapshots are keyed by it
# Cached: each stage is keyed by a hash of its inputs; a second run prints
# "up to date" and does nothing.  (The kernel's key covers guest/kernel/ and
# the package versions, not this script: after changing the kernel steps
# below, run with --force.)  As root, every function is first run inside
# the staged tree (chroot) to catch a missing module before a boot.
#
# usage: scripts/guest/build.sh [--out DIR] [--force] [--jobs N]
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/build/guest
force=0
jobs=2
while [ $# -gt 0 ]; do
    case $1 in
        --out) out=$2; shift 2 ;;
        --out=*) out=${1#--out=}; shift ;;
        --force) force=1; shift ;;
        --jobs) jobs=$2; shift 2 ;;
        -h|--help) sed -n '3,/^[^#]/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "build.sh: error: unknown argument: $1" >&2; exit 2 ;;
    esac
done
mkdir -p "$out"
out=$(cd "$out" && pwd)

say() { echo "build.sh: $*" >&2; }
die() { echo "build.sh: error: $*" >&2; exit 1; }

src_tar=/usr/src/linux-source-6.1.tar.xz
[ -f "$src_tar" ] || die "$src_tar missing (apt-get install linux-source-6.1; see scripts/guest/deps.txt)"
python=/usr/bin/python3.11
[ -x "$python" ] || die "$python missing (apt-get install python3)"

pkgver() { dpkg-query -W -f='${Package}=${Version}\n' "$@" 2>/dev/null || true; }
hash_files() { (cd "$root" && find "$@" -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum); }

kernel_key=$( { hash_files guest/kernel
                pkgver linux-source-6.1 gcc-12 binutils make bison flex; } | sha256sum | cut -c1-16)
initrd_key=$( { hash_files guest/runner guest/functions guest/native scripts/guest/build.sh \
                           scripts/guest/pyfiles.py
                pkgver busybox-static python3.11 python3.11-minimal libpython3.11-stdlib \
                       libpython3.11-minimal python3-pyaes python3-chameleon python3-igraph \
                       python3-pil python3-numpy libc6 g++-12 ; } | sha256sum | cut -c1-16)

cmdline="console=ttyS0 panic=-1 noxsave clearcpuid=smap,smep,pcid,invpcid,rdpid,fsgsbase,pku,popcnt,movbe,bmi1,bmi2,avx,avx2,clflushopt,clwb,rdrand,rdseed,aes,pclmulqdq,sha_ni tsc=reliable quiet loglevel=1 rdinit=/init"

# ---------------------------------------------------------------- kernel
build_kernel() {
    local ksrc=$out/src/linux-source-6.1
    say "kernel: extracting $src_tar"
    rm -rf "$out/src"; mkdir -p "$out/src"
    tar -C "$out/src" -xf "$src_tar"
    for p in "$root"/guest/kernel/*.patch; do
        say "kernel: applying $(basename "$p")"
        patch -d "$ksrc" -p1 --forward --quiet < "$p"
    done
    export KBUILD_BUILD_TIMESTAMP='2024-01-01' KBUILD_BUILD_USER=snapkit KBUILD_BUILD_HOST=snapkit
    make -C "$ksrc" -s tinyconfig
    local args=()
    while read -r line; do
        case $line in
            CONFIG_*=y) local o=${line%%=*}; args+=(--enable "${o#CONFIG_}") ;;
            "# CONFIG_"*" is not set") local o=${line#\# CONFIG_}; args+=(--disable "${o%% *}") ;;
        esac
    done < "$root/guest/kernel/snapkit.config"
    "$ksrc/scripts/config" --file "$ksrc/.config" "${args[@]}"
    make -C "$ksrc" -s olddefconfig
    # olddefconfig silently drops options whose dependencies are missing: check
    local bad=0
    while read -r line; do
        case $line in
            CONFIG_*=y) grep -qx "$line" "$ksrc/.config" || { say "kernel: $line did not take effect"; bad=1; } ;;
            "# CONFIG_"*" is not set") local o=${line#\# }; o=${o%% *}
                ! grep -q "^$o=" "$ksrc/.config" || { say "kernel: $o is still set"; bad=1; } ;;
        esac
    done < "$root/guest/kernel/snapkit.config"
    [ $bad = 0 ] || die "kernel configuration does not match guest/kernel/snapkit.config"
    say "kernel: make -j$jobs vmlinux (a few minutes)"
    make -C "$ksrc" -s -j"$jobs" vmlinux
    cp "$ksrc/vmlinux" "$out/vmlinux.tmp" && mv "$out/vmlinux.tmp" "$out/vmlinux"
    cp "$ksrc/.config" "$out/kernel.config"
    # gen_init_cpio packs the initramfs without root (device nodes) and
    # with fixed timestamps
    cc -O2 -o "$out/gen_init_cpio" "$ksrc/usr/gen_init_cpio.c"
    echo "$kernel_key" > "$out/kernel.key"
}

if [ $force = 0 ] && [ -f "$out/vmlinux" ] && [ -x "$out/gen_init_cpio" ] && \
   [ "$(cat "$out/kernel.key" 2>/dev/null)" = "$kernel_key" ]; then
    say "kernel: up to date ($kernel_key)"
else
    build_kernel
    rm -rf "$out/src"   # 1.3 GB; the key says what it was
fi

# ---------------------------------------------------------------- initramfs
build_initramfs() {
    local stage=$out/stage
    rm -rf "$stage"; mkdir -p "$stage"
    say "initramfs: native helpers"
    mkdir -p "$stage/bin" "$stage/snapkit"
    cc -O2 -static -Wall -o "$stage/init" "$root/guest/runner/init.c"
    if [ -d "$root/guest/native" ]; then
        for f in "$root"/guest/native/*.c "$root"/guest/native/*.cpp; do
            [ -f "$f" ] || continue
            local n; n=$(basename "${f%.*}")
            case $f in
                *.c) cc -O2 -static -Wall -o "$stage/snapkit/$n" "$f" -lm ;;
                *.cpp) g++ -O2 -static -Wall -std=c++20 -o "$stage/snapkit/$n" "$f" ;;
            esac
        done
    fi
    cp /bin/busybox "$stage/bin/busybox"
    say "initramfs: python modules the functions need (traced on the host)"
    "$python" "$root/scripts/guest/pyfiles.py" --root "$root" --stage "$stage" \
        --expected "$out/expected.json.tmp"
    if [ "$(id -u)" = 0 ]; then
        # run every function inside the stage (chroot) before paying for a
        # boot: a module or library missing from the stage shows up here
        say "initramfs: checking the stage (chroot)"
        cp "$out/expected.json.tmp" "$stage/expected.json"
        chroot "$stage" /usr/bin/python3.11 -S -B -c '
import json, sys
sys.path[:0] = ["/snapkit/functions", "/usr/lib/python3/dist-packages"]
import suite
exp = json.load(open("/expected.json"))
bad = []
for n in suite.names():
    h = suite.load(n)
    for a in suite.inputs(n):
        r = h(a)
        r = r[0] if isinstance(r, tuple) else r
        if r != exp[n][a]:
            bad.append("%s %s: %s != %s" % (n, a, r, exp[n][a]))
sys.exit(chr(10).join(bad) if bad else 0)' || die "a function fails inside the stage"
        rm -f "$stage/expected.json"
    fi
    find "$stage" -exec touch -h -d @0 {} +
    "$python" - "$stage" "$out/initramfs.list" <<'EOF'
import os, sys
stage, listfile = sys.argv[1], sys.argv[2]
lines = ["dir /dev 0755 0 0", "nod /dev/console 0600 0 0 c 5 1",
         "nod /dev/ttyS0 0600 0 0 c 4 64", "nod /dev/null 0666 0 0 c 1 3",
         "dir /proc 0755 0 0", "dir /sys 0755 0 0", "dir /tmp 1777 0 0"]
for d, dirs, files in os.walk(stage):
    dirs.sort(); files.sort()
    rel = os.path.relpath(d, stage)
    for n in dirs:
        p = os.path.join(d, n)
        r = "/" + os.path.normpath(os.path.join(rel, n))
        if os.path.islink(p):
            lines.append(f"slink {r} {os.readlink(p)} 0777 0 0")
        else:
            lines.append(f"dir {r} 0755 0 0")
    for n in files:
        p = os.path.join(d, n)
        r = "/" + os.path.normpath(os.path.join(rel, n))
        if os.path.islink(p):
            lines.append(f"slink {r} {os.readlink(p)} 0777 0 0")
        else:
            mode = "0755" if os.access(p, os.X_OK) else "0644"
            lines.append(f"file {r} {p} {mode} 0 0")
open(listfile, "w").write("\n".join(lines) + "\n")
EOF
    "$out/gen_init_cpio" -t 0 "$out/initramfs.list" > "$out/initramfs.cpio.tmp"
    mv "$out/initramfs.cpio.tmp" "$out/initramfs.cpio"
    mv "$out/expected.json.tmp" "$out/expected.json"
    echo "$initrd_key" > "$out/initramfs.key"
    say "initramfs: $(( $(stat -c %s "$out/initramfs.cpio") / 1024 )) KiB, $(grep -c '^file' "$out/initramfs.list") files"
}

if [ $force = 0 ] && [ -f "$out/initramfs.cpio" ] && [ -f "$out/expected.json" ] && \
   [ "$(cat "$out/initramfs.key" 2>/dev/null)" = "$initrd_key" ]; then
    say "initramfs: up to date ($initrd_key)"
else
    build_initramfs
fi

# ---------------------------------------------------------------- shim, cmdline, key
nohuge_key=$(sha256sum "$root/guest/nohuge/nohuge.c" | cut -c1-16)
if [ $force = 1 ] || [ ! -f "$out/libnohuge.so" ] || [ "$(cat "$out/nohuge.key" 2>/dev/null)" != "$nohuge_key" ]; then
    cc -O2 -Wall -shared -fPIC -o "$out/libnohuge.so" "$root/guest/nohuge/nohuge.c" -ldl
    echo "$nohuge_key" > "$out/nohuge.key"
fi
echo "$cmdline" > "$out/cmdline"
# The guest's key names what boots, not how it was made: the initramfs is
# bit-reproducible, so a change to a build script that yields the same bytes
# keeps every snapshot valid.
key=$( { sha256sum < "$out/vmlinux"; sha256sum < "$out/initramfs.cpio"; echo "$cmdline"; } |
       sha256sum | cut -c1-16)
if [ "$(cat "$out/key" 2>/dev/null)" = "$key" ]; then
    say "up to date ($key)"
else
    echo "$key" > "$out/key"
    say "built guest $key in $out"
fi
