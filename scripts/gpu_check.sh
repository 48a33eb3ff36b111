#!/usr/bin/env bash
# The validation to run first on a GPU machine (H100/H200), under 8 minutes.
# On the build machine:  bash scripts/gpu_bundle.sh   (portable nnc, test_codegen
# and Fashion-MNIST in .gpu/); then, on the GPU machine, from the checkout's
# root:                  bash scripts/gpu_check.sh
#
#   env      the GPU, the driver, where the CUDA libraries are
#   suite    the CUDA test suite (test_codegen) on this machine
#   check    `nnc check` on cuda against interp for mlp, cnn and vgg, each on
#            nnc's kernels and with --lower conv=cudnn,matmul=cublas ("cudnn"),
#            with CUDA-graph replay and with direct launches (graph=0)
#   bench    `nnc bench` of vgg on cuda with the predicted time beside the
#            measured one per kernel (--predict)
#   fit      two real epochs of models/vgg_fashion.lua, each timed
#   torch    PyTorch's same VGG at batch 32, where PyTorch with CUDA is installed
# It ends with one table, also in $OUT/summary.txt (OUT defaults to
# /tmp/nnc-gpu-check); everything else is in $OUT/check.log.
# GPU_CHECK_BACKEND=cuda-emu runs the same stages on the host (the plumbing only).
set -u
export LC_ALL=C
cd "$(dirname "$0")/.."
T0=$(date +%s)
BUDGET=${GPU_CHECK_BUDGET:-470}
B=${GPU_CHECK_BACKEND:-cuda}
G=${GPU_BUNDLE:-.gpu}
O=${OUT:-/tmp/nnc-gpu-check}
mkdir -p "$O"
LOG=$O/check.log SUM=$O/summary.txt
: > "$LOG"
W=$(mktemp -d /tmp/nnc-gpu-check.XXXXXX)
trap 'rm -rf "$W"' EXIT
for d in "$G/bin" build-portable build; do [ -x "$d/nnc" ] && { BIN=$d; break; }; done
NNC=${BIN:?no nnc: run scripts/gpu_bundle.sh first}/nnc
[ -d "$G/data" ] && export NNC_DATA=${NNC_DATA:-$PWD/$G/data}
export NNC_CACHE_DIR=$W/cache PATH=$PATH:/usr/local/cuda/bin
ROWS=()

left() { echo $((BUDGET - ($(date +%s) - T0))); }
now_ms() { date +%s%3N; }
row() { ROWS+=("$(printf '%-34s %-5s %7s  %s' "$1" "$2" "$3" "$4")"); }
# The result of the last stage run: PASS, FAIL, or SKIP when the budget was spent.
result() { ((RC == 99)) && echo SKIP || { ((RC == 0)) && echo PASS || echo FAIL; }; }

# run NAME LIMIT CMD...: output in $W/NAME.out and the log; sets RC and SECS.
# A stage that would start with under 20 s of budget left is skipped.
run() {
  local name=$1 limit=$2 rem; shift 2
  rem=$(left)
  : > "$W/$name.out"
  if ((rem < 20)); then RC=99 SECS=-; return 99; fi
  ((limit > rem - 5)) && limit=$((rem - 5))
  echo "=== [$(($(date +%s) - T0))s] $name (limit ${limit}s): $*" >> "$LOG"
  local t; t=$(now_ms)
  timeout -k 5 "$limit" "$@" > "$W/$name.out" 2>&1
  RC=$?
  SECS=$(awk -v d=$(($(now_ms) - t)) 'BEGIN { printf "%.1f", d / 1000 }')
  { cat "$W/$name.out"; echo "--- rc=$RC in ${SECS}s"; } >> "$LOG"
  return $RC
}

# A `nnc check` stage (its output in $W/FILE.out), as row TITLE: PASS only
# with a CHECK line from the backend asked for.
check_row() {
  local file=$1 title=$2 line
  line=$(grep '^CHECK ' "$W/$file.out" | tail -1)
  if ((RC == 99)); then row "$title" SKIP - "budget spent"
  elif grep -q 'cannot run here' "$W/$file.out"; then row "$title" FAIL "$SECS" "$(grep -m1 'cannot run here' "$W/$file.out" | cut -c1-120)"
  elif ((RC == 124)); then row "$title" FAIL "$SECS" "timed out"
  elif [ -z "$line" ]; then row "$title" FAIL "$SECS" "rc $RC: $(tail -1 "$W/$file.out" | cut -c1-120)"
  elif ((RC == 0)); then row "$title" PASS "$SECS" "$line"
  else row "$title" FAIL "$SECS" "past tolerance: $line"; fi
}

# ---- env ---------------------------------------------------------------------------
{
  echo "nnc $("$NNC" --version 2>&1) from $BIN, commit $(cat "$G/commit.txt" 2>/dev/null || git rev-parse HEAD)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1
  ldd "$NNC" | grep -E 'not found|lua|openblas'
  for l in libcuda.so.1 libnvrtc.so libcublas.so libcudnn.so; do
    echo "$l: $(ldconfig -p | awk -v l="$l" 'index($1, l) == 1 {print $NF; exit}')"
  done
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" 2>&1 | tail -1
} > "$O/env.txt" 2>&1
cat "$O/env.txt" >> "$LOG"
GPU=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)
row env "-" - "${GPU:-no nvidia-smi}; CUDA libraries in the loader cache: $(grep -c '^lib.*: /' "$O/env.txt") of 4"

# ---- suite -------------------------------------------------------------------------
if [ -x "$BIN/test_codegen" ]; then
  CK_FORK=no NNC_SOURCE_DIR=$PWD run suite 150 "$BIN/test_codegen"
  row "suite (test_codegen)" "$(result)" "$SECS" \
    "$(grep -E '^[0-9]+%: Checks' "$W/suite.out" | tail -1)"
else
  row "suite (test_codegen)" SKIP - "no test_codegen beside nnc"
fi

# ---- check: three models, library lowering on and off, graphs on and off -------------
for model in mlp cnn vgg_fashion; do
  opts="--steps 3"
  [ $model = vgg_fashion ] && opts="--steps 2 --batch 8"
  for lower in nnc cudnn; do
    for graph in 1 0; do
      title="check $model $lower graph=$graph"
      NNC_CUDA_GRAPH=$graph run "${title// /_}" 90 "$NNC" check models/$model.lua --backend "$B" $opts \
        --lower "$([ $lower = nnc ] && echo conv=nnc,matmul=nnc || echo conv=cudnn,matmul=cublas)"
      check_row "${title// /_}" "$title"
    done
  done
done

# ---- bench: per kernel, predicted beside measured --------------------------------------
kind=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | grep -o -i -E 'h100|h200' | head -1 | tr A-Z a-z)
predict=()
"$NNC" --help 2>&1 | grep -q -- '--predict' && predict=(--predict "${kind:-h100}")
run bench 120 "$NNC" bench models/vgg_fashion.lua --backend "$B" --steps 50 --infer-batch 32 --top 15 "${predict[@]}"
cp "$W/bench.out" "$O/bench_vgg.txt"
row "bench vgg ${predict[*]}" "$(result)" "$SECS" \
  "$(grep -E '^train ' "$W/bench.out" | tr -s ' ' | cut -c1-110)"

# ---- fit: two real epochs ------------------------------------------------------------
cat > "$W/stamp.sh" <<'STAMP'
s=$(date +%s%3N)
while IFS= read -r l; do printf '%8.3f %s\n' "$(awk -v d=$(($(date +%s%3N) - s)) 'BEGIN { print d / 1000 }')" "$l"; done
STAMP
run fit 200 bash -c "set -o pipefail; $NNC models/vgg_fashion.lua --backend $B --epochs 2 2>&1 | tr '\r' '\n' | bash $W/stamp.sh"
cp "$W/fit.out" "$O/fit_vgg.txt"
e1=$(awk '/Epoch 1\/2/{a=$1} /Epoch 2\/2/{print $1 - a; exit}' "$W/fit.out")
e2=$(awk '/Epoch 2\/2/{a=$1; next} a && /test loss|Epoch/{print $1 - a; exit}' "$W/fit.out")
[ "$(result)" = PASS ] && [ -z "$e2" ] && RC=1
row "fit vgg_fashion 2 epochs" "$(result)" "$SECS" \
  "epoch 1 ${e1:-?} s (compiles included), epoch 2 ${e2:-?} s with validation; $(grep -m1 'test loss' "$W/fit.out" | cut -c10-)"

# ---- torch: the same model -------------------------------------------------------------
if python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
  cat > "$W/torch_vgg.py" <<'PY'
import time, torch, torch.nn as nn
dev, B = 'cuda', 32
def vgg():  # models/vgg_fashion.lua
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Dropout(0.5), nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(),
        nn.Conv2d(128, 256, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.5), nn.Flatten(),
        nn.Linear(9216, 512), nn.ReLU(), nn.Dropout(0.5), nn.Linear(512, 256), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(256, 10)).to(dev)
X, Y = torch.rand(64, B, 1, 28, 28, device=dev), torch.randint(0, 10, (64, B), device=dev)
lossf = nn.CrossEntropyLoss()
def timed(step, n):
    for i in range(10): step(i)
    torch.cuda.synchronize(); t = time.perf_counter()
    for i in range(n): step(i)
    torch.cuda.synchronize(); return (time.perf_counter() - t) / n
for tf32 in (False, True):
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
    m = vgg(); opt = torch.optim.Adam(m.parameters(), lr=1e-3, eps=1e-7)
    def train(i):
        opt.zero_grad(set_to_none=True); out = m(X[i % 64]); loss = lossf(out, Y[i % 64])
        loss.backward(); opt.step(); loss.item()
    def evaluate(i):
        with torch.no_grad(): lossf(m(X[i % 64]), Y[i % 64]).item()
    t, e = timed(train, 300), timed(evaluate, 300)
    print(f"TORCH {'tf32' if tf32 else 'fp32'} train {t * 1e3:.3f} ms/step eval {e * 1e3:.3f} ms/step "
          f"epoch ~{1407 * t + 469 * e:.2f} s", flush=True)
PY
  run torch 120 python3 "$W/torch_vgg.py"
  row "torch vgg (eager, same model)" "$(result)" "$SECS" \
    "$(grep '^TORCH' "$W/torch.out" | cut -c7- | tr '\n' ';' | cut -c1-200)"
else
  row "torch vgg (eager, same model)" SKIP - "no PyTorch with CUDA here"
fi

{
  echo "nnc gpu_check on $B (${GPU:-no GPU}), $(($(date +%s) - T0)) s of ${BUDGET}s"
  printf '%-34s %-5s %7s  %s\n' stage result seconds detail
  printf '%s\n' "${ROWS[@]}"
} | tee "$SUM"
! grep -q ' FAIL ' "$SUM"
