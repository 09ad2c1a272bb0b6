"""Time one cpu-preset epoch on point_u4_maze per DEPTHxWIDTH argument (how the study chose width 128)."""

import sys
import time

import jax

from crl import enable_compile_cache
from crl.config import TrainConfig
from crl.train import Trainer

enable_compile_cache()
for spec in sys.argv[1:]:
    depth, width = map(int, spec.split("x"))
    cfg = TrainConfig.preset("cpu", env="point_u4_maze", depth=depth, width=width)
    t0 = time.time()
    trainer = Trainer(cfg)
    state = trainer.init(jax.random.PRNGKey(0))
    for _ in range(2):  # the prefill epoch and the first SGD epoch, compile included
        state, _, _ = trainer.epoch(state)
    jax.block_until_ready(state)
    t1 = time.time()
    for _ in range(2):
        state, _, _ = trainer.epoch(state)
    jax.block_until_ready(state)
    t2 = time.time()
    print(spec, "setup+compile+2 epochs", round(t1 - t0, 1), "s; epoch", round((t2 - t1) / 2, 2), "s", flush=True)
