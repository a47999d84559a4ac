#!/bin/sh
# Short single-process training runs: block-wise and end-to-end on a
# Fashion-MNIST subset, and block-wise on QuickDraw files in the published
# formats (simplified ndjson, binary .bin, numpy_bitmap .npy) written here.
# Checks accuracy far above chance, the run directory, eval of the cut model
# and infer.
set -u
BUILD=${BUILD:-build}
ET=$BUILD/bin/edgetrain
tmp=$(mktemp -d /tmp/et-train-short.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
check() {   # name, command...
    name=$1; shift
    if "$@"; then echo "PASS: $name"; else echo "FAIL: $name"; fails=$((fails + 1)); fi
}
# awk: is field $2 of "k=v1,v2,.." (index $1) above $3?
above() { echo "$1" | awk -F'[=,]' -v i="$2" -v t="$3" '{exit !($(i+1) > t)}'; }

# --- Fashion-MNIST: blockwise and e2e side by side ----------------------
out=$tmp/fm
$ET train --data fashion-mnist --mode both --train-limit 4000 --test-limit 1000 \
    --epochs 3 --batch 64 --input 28 --alpha 0.25 --stages 1,2-5,6-13 \
    --lr 0.005 --threads 2 --out "$out" >"$tmp/fm.log" 2>&1
rc=$?
cat "$tmp/fm.log"
last=$(tail -n 1 "$tmp/fm.log")
check "train exits 0" [ "$rc" -eq 0 ]
check "last line is test_accuracy with 3 heads" \
    sh -c "echo '$last' | grep -Eq '^test_accuracy=[0-9.]+,[0-9.]+,[0-9.]+$'"
check "blockwise head 1 beats chance widely (>0.6)" above "$last" 1 0.6
check "blockwise last head beats chance widely (>0.5)" above "$last" 3 0.5
e2e=$(awk -F, '$1==3 && $2=="e2e" {print $8}' "$out/metrics.csv")
check "e2e beats chance widely (>0.4, got $e2e)" awk -v a="$e2e" 'BEGIN {exit !(a > 0.4)}'
check "metrics.csv has 3 epochs x (3 heads + e2e)" \
    [ "$(tail -n +2 "$out/metrics.csv" | wc -l)" -eq 12 ]
check "checkpoints and plot written" test -s "$out/stage1.ckpt" -a -s "$out/stage3.ckpt" \
    -a -s "$out/e2e.ckpt" -a -s "$out/accuracy.png" -a -s "$out/run.json"

# eval of the cut model reproduces the trainer's head-2 test accuracy.
acc2=$(echo "$last" | awk -F'[=,]' '{print $3}')
ev=$($ET eval --checkpoints "$out" --upto 2 --test-limit 1000 --threads 2 2>&1)
echo "$ev"
check "eval --upto 2 matches training's head 2 ($acc2)" \
    sh -c "echo '$ev' | grep -q '^accuracy=$acc2\$'"
inf=$($ET infer --checkpoints "$out" --upto 1 --repeats 3 test:0 test:1 2>&1)
echo "$inf"
check "infer prints top-3 with probabilities" \
    sh -c "echo '$inf' | grep -Eq '^test:1: .+=0\.[0-9]+, .+=0\.[0-9]+, .+=0\.[0-9]+ '"
check "infer reports latency" sh -c "echo '$inf' | grep -q '^latency_ms='"
check "eval refuses --upto beyond the run" \
    sh -c "! $ET eval --checkpoints '$out' --upto 9 2>/dev/null"

# --- QuickDraw files in the real formats --------------------------------
qd=$tmp/qd
python3 - "$qd" <<'PY'
import json, math, os, random, struct, sys
d = sys.argv[1]; os.makedirs(d)
rnd = random.Random(1)
def shape(kind):
    # Simplified-format strokes (0..255) of a jittered circle, line or cross.
    j = lambda: rnd.uniform(-20, 20)
    if kind == "circle":
        cx, cy, r = 128 + j(), 128 + j(), 80 + j()
        pts = [(cx + r * math.cos(t / 10 * 2 * math.pi), cy + r * math.sin(t / 10 * 2 * math.pi)) for t in range(11)]
        return [pts]
    if kind == "line":
        y = 128 + 3 * j()
        return [[(20 + j(), y + j()), (235 + j(), y + j())]]
    return [[(30 + j(), 30 + j()), (225 + j(), 225 + j())], [(225 + j(), 30 + j()), (30 + j(), 225 + j())]]
clip = lambda v: max(0, min(255, int(v)))
with open(f"{d}/circle.ndjson", "w") as f:
    for i in range(60):
        s = shape("circle")
        f.write(json.dumps({"word": "circle", "countrycode": "US", "recognized": True, "key_id": str(i),
                            "drawing": [[[clip(x) for x, _ in st], [clip(y) for _, y in st]] for st in s]}) + "\n")
with open(f"{d}/full_binary_line.bin", "wb") as f:
    for i in range(60):
        s = shape("line")
        f.write(struct.pack("<Q2sbIH", i, b"US", 1, 0, len(s)))
        for st in s:
            f.write(struct.pack("<H", len(st)) + bytes(clip(x) for x, _ in st) + bytes(clip(y) for _, y in st))
with open(f"{d}/full_simplified_cross.ndjson", "w") as f:
    for i in range(60):
        s = shape("cross")
        f.write(json.dumps({"word": "cross", "drawing": [[[clip(x) for x, _ in st], [clip(y) for _, y in st]] for st in s]}) + "\n")
PY
$ET train --data "quickdraw:$qd" --epochs 4 --batch 16 --input 32 --alpha 0.25 \
    --stages 1,2-13 --lr 0.005 --threads 2 --test-fraction 0.25 --no-plot \
    --out "$tmp/qdrun" >"$tmp/qd.log" 2>&1
rc=$?
cat "$tmp/qd.log"
last=$(tail -n 1 "$tmp/qd.log")
check "quickdraw ndjson+bin: train exits 0" [ "$rc" -eq 0 ]
check "quickdraw: 135 train / 45 test images of 64x64 strokes" \
    grep -q "135 train, 45 test images of 64x64, 3 classes" "$tmp/qd.log"
check "quickdraw: head 1 beats chance (1/3) widely (>0.6)" above "$last" 1 0.6
# eval reuses the run's split options (--test-fraction 0.25): same 45 images.
qacc1=$(echo "$last" | awk -F'[=,]' '{print $2}')
ev=$($ET eval --checkpoints "$tmp/qdrun" --upto 1 --threads 2 2>&1)
echo "$ev"
check "quickdraw: eval sees the run's test split and accuracy ($qacc1)" \
    sh -c "echo '$ev' | grep -q '45 images' && echo '$ev' | grep -q '^accuracy=$qacc1\$'"

# numpy_bitmap .npy: a stroke class vs. an empty one, 28x28.
python3 - "$tmp/np" <<'PY'
import os, random, struct, sys
d = sys.argv[1]; os.makedirs(d)
rnd = random.Random(2)
def npy(path, rows):
    hdr = "{'descr': '|u1', 'fortran_order': False, 'shape': (%d, 784), }" % len(rows)
    hdr += " " * ((64 - (10 + len(hdr) + 1) % 64) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode())
        for r in rows: f.write(bytes(r))
def bar(vertical):
    img = [0] * 784; c = rnd.randint(8, 19)
    for t in range(4, 24):
        img[(t * 28 + c) if vertical else (c * 28 + t)] = 255
    return img
npy(f"{d}/full_numpy_bitmap_vertical.npy", [bar(True) for _ in range(200)])
npy(f"{d}/full_numpy_bitmap_horizontal.npy", [bar(False) for _ in range(200)])
PY
$ET train --data "$tmp/np" --epochs 4 --batch 32 --input 28 --alpha 0.25 --no-flip \
    --stages 1,2-13 --lr 0.005 --threads 2 --no-plot --out "$tmp/nprun" >"$tmp/np.log" 2>&1
rc=$?
cat "$tmp/np.log"
last=$(tail -n 1 "$tmp/np.log")
check "quickdraw npy: train exits 0" [ "$rc" -eq 0 ]
check "quickdraw npy: head 1 beats chance (1/2) widely (>0.8)" above "$last" 1 0.8

# A corrupt dataset file fails cleanly with the file name.
head -c 1000 "$tmp/np/full_numpy_bitmap_vertical.npy" >"$tmp/np/full_numpy_bitmap_vertical.npy.tmp"
mv "$tmp/np/full_numpy_bitmap_vertical.npy.tmp" "$tmp/np/full_numpy_bitmap_vertical.npy"
msg=$($ET train --data "$tmp/np" --epochs 1 --out "$tmp/bad" 2>&1)
rc=$?
check "corrupt npy: exit 1 naming file and byte ($msg)" \
    sh -c "[ $rc -eq 1 ] && echo '$msg' | grep -q 'full_numpy_bitmap_vertical.npy: truncated at byte'"
[ "$fails" -eq 0 ]
