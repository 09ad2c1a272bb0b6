#!/usr/bin/env bash
# One-shot GPU check of the MJX collector and deep training at real batch sizes (run through the `device` tool:
# wheels for packages the GPU image lacks travel in .whl/, results land in $OUT). Every step has its own timeout so
# a slow one cannot starve the rest.  Usage on the GPU machine:  bash bench/gpu_check.sh
# Wheels (Python 3.12, x86-64) the 'cuda' image lacked on 2026-11-25: mujoco mujoco-mjx glfw pyopengl websockets
# trimesh zarr donfig google-crc32c numcodecs dask distributed partd locket importlib_metadata tblib tornado zict
# gymnasium farama-notifications (`pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl ...`).
# Do not set MUJOCO_GL=egl there (no EGL libraries in the image). Compiles are slow on the GPU (the depth-64 trainer
# took 80 s to init and 115 s to compile its epoch), so the per-step limits below only fit with a warm
# compile cache; bench/gpu_train_probe.py times the depth-64 paper trainer by itself.
set -u
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1 CRL_JAX_CACHE=/tmp/jaxcache
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import jax, mujoco, flax, optax; print('jax', jax.__version__, jax.devices(), 'mujoco', mujoco.__version__, 'flax', flax.__version__)" | tee -a "$OUT/gpu.txt"
step() { local name=$1 limit=$2; shift 2; echo "=== $name (limit ${limit}s): $*"; local t0=$SECONDS
  timeout "$limit" "$@" 2>&1 | grep -v "^WARNING" | tee "$OUT/$name.txt"; echo "=== $name took $((SECONDS - t0)) s"; }
step envs 90 python3 bench/bench_envs.py --family point --family ant --family humanoid --batch 1024 --batch 4096 \
  --steps 100 --repeat 3
step sgd 110 python3 bench/bench_sgd.py --depths 4 64 --batches 256 512 1024 --steps 20 --rounds 3
step collect 100 python3 bench/bench_collect.py --envs ant_u_maze --depths 64 --num-envs 512 --unroll-length 62 \
  --sgd-steps 1000 --batch-size 512 --epochs 2 --repeats 2
step train 140 python3 -m crl.cli_train online --env ant_u_maze --preset paper --depth 64 \
  --total-env-steps 3000000 --eval-every 4 --checkpoint-every 1000 --no-progress --out /tmp/run_ant_d64
cp /tmp/run_ant_d64/metrics.jsonl "$OUT/train_metrics.jsonl" 2>/dev/null
echo "=== done"
