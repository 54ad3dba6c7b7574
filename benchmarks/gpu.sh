#!/usr/bin/env bash
# GPU figures in one prepared run (about 5 minutes on one H100): policy latency in bf16 at
# batch 1 and 32, training samples/s of the default config, and the server's throughput
# with 1/4/16 clients. Prints one JSON object (progress goes to stderr).
#
#     bash benchmarks/gpu.sh            # after `make install`, on a machine with CUDA
#
# On a machine with torch but without the simulator, give a dataset and a frame made here:
#     DATA=dir FRAME=file PY=python3 bash benchmarks/gpu.sh
# (DATA from `vla collect`; FRAME from `benchmarks/serve_latency.py --save-frame file`).
#
# Each part has its own time limit, so a stuck part cannot eat the whole budget; a part
# that fails or times out is reported as {"error": ...} and the rest still run.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
CKPT=${CKPT:-policies/checkpoints/default}
tmp=$(mktemp -d)
DATA_ARGS=(); [[ -n "${DATA:-}" ]] && DATA_ARGS=(--data "$DATA")
FRAME_ARGS=(); [[ -n "${FRAME:-}" ]] && FRAME_ARGS=(--frame "$FRAME")

if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo '{"benchmark": "gpu", "error": "no CUDA device visible to torch"}'
  exit 1
fi

part() {  # part NAME SECONDS CMD...: the command's JSON (last line) into $tmp/NAME.json
  local name=$1 limit=$2
  shift 2
  echo "gpu.sh: $name ..." >&2
  if timeout "$limit" "$@" > "$tmp/$name.out" 2> "$tmp/$name.err"; then
    tail -n 1 "$tmp/$name.out" > "$tmp/$name.json"
  else
    echo "{\"error\": \"exit $? (see stderr tail)\", \"stderr\": $(tail -c 400 "$tmp/$name.err" | "$PY" -c 'import json,sys; print(json.dumps(sys.stdin.read()))')}" > "$tmp/$name.json"
  fi
}

part latency 150 "$PY" benchmarks/policy_latency.py --checkpoint "$CKPT" --device cuda \
  --dtype bfloat16 --batch 1,32 --iters 200 "${FRAME_ARGS[@]}"
part train 240 "$PY" benchmarks/train_throughput.py --device cuda --steps 100 \
  --variants data_path,layout "${DATA_ARGS[@]}"
part serve 150 "$PY" benchmarks/serve_latency.py --policy "$CKPT" --device cuda \
  --clients 1,4,16 --client-procs 4 --requests 1000 "${FRAME_ARGS[@]}"

"$PY" - "$tmp" <<'PYEOF'
import json, pathlib, sys
import torch
tmp = pathlib.Path(sys.argv[1])
out = {"benchmark": "gpu", "device": torch.cuda.get_device_name(0)}
for name in ("latency", "train", "serve"):
    try:
        out[name] = json.loads((tmp / f"{name}.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        out[name] = {"error": f"no JSON: {err}"}
print(json.dumps(out))
PYEOF
