"""GPU probe: compile time and per-epoch wall time of the `paper` preset trainer (depth 64, 512 envs x 62 steps,
batch 512, 1000 SGD steps per epoch) on ant_u_maze.  python bench/gpu_train_probe.py [--depth 64] [--epochs 3]"""

import argparse
import time

import jax

from crl import enable_compile_cache
from crl.config import TrainConfig
from crl.train import Trainer

p = argparse.ArgumentParser()
p.add_argument("--env", default="ant_u_maze")
p.add_argument("--depth", type=int, default=64)
p.add_argument("--epochs", type=int, default=3)
a = p.parse_args()
enable_compile_cache()
cfg = TrainConfig.preset("paper", env=a.env, depth=a.depth, min_replay_size=512 * 62)
tr = Trainer(cfg)
t = time.perf_counter()
ts = jax.block_until_ready(tr.init(jax.random.PRNGKey(0)))
print(f"init {time.perf_counter() - t:.1f} s", flush=True)
t = time.perf_counter()
lowered = tr.epoch.lower(ts)
compiled = lowered.compile()
print(f"epoch compile {time.perf_counter() - t:.1f} s", flush=True)
for i in range(a.epochs):
    t = time.perf_counter()
    ts, m, _ = jax.block_until_ready(compiled(ts))
    dt = time.perf_counter() - t
    print(f"epoch {i}: {dt:.2f} s = {cfg.env_steps_per_epoch / dt:,.0f} env steps/s with "
          f"{cfg.learner.sgd_steps} SGD steps "
          f"(sgd on: {float(m['train/sgd'])}, critic/loss {float(m['critic/loss']):.3f})", flush=True)
