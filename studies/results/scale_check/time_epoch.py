import sys, time, jax
from crl import enable_compile_cache
from crl.config import TrainConfig
from crl.train import Trainer
enable_compile_cache()
for spec in sys.argv[1:]:
    depth, width = map(int, spec.split("x"))
    cfg = TrainConfig.preset("cpu", env="point_u4_maze", depth=depth, width=width)
    t0 = time.time(); tr = Trainer(cfg); st = tr.init(jax.random.PRNGKey(0))
    st, m, _ = tr.epoch(st); jax.block_until_ready(st); st, m, _ = tr.epoch(st); jax.block_until_ready(st)
    t1 = time.time()
    for _ in range(2):
        st, m, _ = tr.epoch(st)
    jax.block_until_ready(st); t2 = time.time()
    print(spec, "setup+compile+2 epochs", round(t1 - t0, 1), "s; epoch", round((t2 - t1) / 2, 2), "s", flush=True)
