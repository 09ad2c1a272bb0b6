"""Dataset store benchmark: 1M ant-like transitions, crl Zarr shards vs Minari (hdf5) in the same run.

Data: real MuJoCo Ant rollouts (Gymnasium's ant.xml: nq 15, nv 14, 8 actuators, 5 physics substeps per
transition) under a smooth noisy policy (Ornstein-Uhlenbeck actions), `--real` transitions in episodes of 500 steps;
observation = concat(qpos, qvel) (29), achieved goal = torso xy, a random commanded goal per episode, success/
reward = within 0.5 of the goal. To reach `--transitions` the real block is tiled, each tile translated in the plane
(x, y and the goals shifted by a per-tile offset, which is a physically valid ant trajectory) with fresh episode ids.
The compression ratio of the untiled real block is printed too, so tiling cannot flatter the byte counts.

Measures (best of --repeat): write throughput and bytes for each compression vs Minari's
`create_dataset_from_buffers` (hdf5); a full scan (`DatasetReader.load`, all fields) and an episode scan vs
Minari's `iterate_episodes`; `verify` throughput. Run: python bench/bench_store.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore", category=UserWarning, module="minari")

EP_LEN = 500


def ant_rollouts(n_transitions: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Real Ant physics: `n_transitions // EP_LEN` episodes from a smooth noisy policy."""
    import gymnasium
    import mujoco

    xml = Path(gymnasium.__file__).parent / "envs/mujoco/assets/ant.xml"
    model = mujoco.MjModel.from_xml_path(str(xml))
    data = mujoco.MjData(model)
    rng = np.random.default_rng(seed)
    n_eps = max(1, n_transitions // EP_LEN)
    T = EP_LEN
    qpos = np.zeros((n_eps, T + 1, model.nq), np.float32)
    qvel = np.zeros((n_eps, T + 1, model.nv), np.float32)
    act = np.zeros((n_eps, T, model.nu), np.float32)
    for e in range(n_eps):
        mujoco.mj_resetData(model, data)
        data.qpos[:] = model.qpos0 + rng.uniform(-0.1, 0.1, model.nq)
        data.qpos[:2] = rng.uniform(-4, 4, 2)
        data.qvel[:] = rng.normal(0, 0.1, model.nv)
        a = np.zeros(model.nu)
        for t in range(T):
            qpos[e, t], qvel[e, t] = data.qpos, data.qvel
            a = np.clip(a + 0.15 * (0 - a) + 0.3 * rng.normal(size=model.nu), -1, 1)  # OU noise
            act[e, t] = a
            data.ctrl[:] = a
            mujoco.mj_step(model, data, nstep=5)
        qpos[e, T], qvel[e, T] = data.qpos, data.qvel
    goal = rng.uniform(-8, 8, (n_eps, 1, 2)).astype(np.float32)
    obs = np.concatenate([qpos, qvel], -1)
    xy = qpos[..., :2]
    success = np.linalg.norm(xy[:, 1:] - goal, axis=-1) <= 0.5
    trunc = np.zeros((n_eps, T), bool)
    trunc[:, -1] = True
    flat = lambda x: x.reshape(n_eps * x.shape[1], *x.shape[2:])  # noqa: E731
    return {
        "observation": flat(obs[:, :-1]), "action": flat(act), "achieved_goal": flat(xy[:, :-1]),
        "desired_goal": flat(np.repeat(goal, T, 1)), "reward": flat(success.astype(np.float32)),
        "success": flat(success), "terminal": np.zeros(n_eps * T, bool), "truncation": flat(trunc),
        "qpos": flat(qpos[:, :-1]), "qvel": flat(qvel[:, :-1]),
        "episode_id": np.repeat(np.arange(n_eps, dtype=np.int64), T),
        "step": np.tile(np.arange(T, dtype=np.int32), n_eps),
        "final_observation": obs[:, -1], "final_achieved_goal": xy[:, -1], "final_desired_goal": goal[:, 0],
        "final_qpos": qpos[:, -1], "final_qvel": qvel[:, -1],
        "episode_offsets": np.arange(n_eps + 1, dtype=np.int64) * T,
    }


def tile(block: dict[str, np.ndarray], n_transitions: int) -> dict[str, np.ndarray]:
    """Repeat the real block, translating each copy in the plane (x, y, goals) and renumbering episodes."""
    rows = int(block["episode_offsets"][-1])
    n_tiles = -(-n_transitions // rows)
    eps = block["episode_offsets"].size - 1
    out: dict[str, list[np.ndarray]] = {k: [] for k in block if k != "episode_offsets"}
    for k in range(n_tiles):
        shift = np.array([7.3 * k, -5.1 * k], np.float32)
        for name, v in block.items():
            if name == "episode_offsets":
                continue
            v = v.copy()
            if name in ("observation", "final_observation", "qpos", "final_qpos"):
                v[:, :2] += shift
            elif name.endswith("_goal"):
                v += shift
            elif name == "episode_id":
                v += k * eps
            out[name].append(v)
    full = {k: np.concatenate(v) for k, v in out.items()}
    full["episode_offsets"] = np.arange(n_tiles * eps + 1, dtype=np.int64) * EP_LEN
    return full


def batches(data: dict[str, np.ndarray], episodes: int = 100):
    from crl.datasets.schema import slice_episodes

    n = data["episode_offsets"].size - 1
    for a in range(0, n, episodes):
        yield slice_episodes(data, a, min(n, a + episodes))


def write_crl(root: str, data: dict[str, np.ndarray], compression: str, name: str) -> tuple[float, dict]:
    from crl.datasets import DatasetStore
    from crl.datasets.synthetic import synthetic_spec

    spec = {**synthetic_spec(29, 8, 2), "name": "ant_like", "nq": 15, "nv": 14}
    t0 = time.perf_counter()
    st = DatasetStore(root).begin(name, spec, compression=compression)
    with st.writer("w0") as w:
        for b in batches(data):
            w.append(b)
    m = st.commit()
    return time.perf_counter() - t0, m


def dir_bytes(path: str) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--transitions", type=int, default=1_000_000)
    ap.add_argument("--real", type=int, default=100_000, help="real Ant transitions before tiling")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--compressions", default="zstd,blosc-lz4,blosc-zstd,blosc-zstd-bitshuffle")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench_store_")
    os.environ["MINARI_DATASETS_PATH"] = os.path.join(tmp, "minari")
    try:
        t0 = time.perf_counter()
        real = ant_rollouts(args.real)
        data = tile(real, args.transitions)
        n = int(data["episode_offsets"][-1])
        raw = sum(v.nbytes for v in data.values())
        print(f"data: {n} transitions ({real['episode_offsets'][-1]} real Ant, tiled), {raw / 1e6:.0f} MB raw "
              f"in memory, generated in {time.perf_counter() - t0:.0f} s")

        import gymnasium as gym
        import minari

        from crl.datasets import DatasetStore
        from crl.datasets.minari_io import _episode_buffers, _spaces
        from crl.pipelines.verify import verify

        spec = {"state_size": 29, "goal_size": 2}
        obs_space, act_space = _spaces(spec, data["action"])
        # Minari baseline content (the export): Dict observations, actions, rewards, terminations,
        # truncations, infos {qpos, qvel}. crl stores success, episode_id and step on top, so bytes favour Minari.
        # The baseline's `observation` is the 29-dim state (the export appends the goal; that would only add bytes).
        buffers = [
            replace(b, infos={k: b.infos[k] for k in ("qpos", "qvel")},
                    observations={**b.observations, "observation": b.observations["observation"][:, :29]})
            for b in _episode_buffers(data)
        ]
        obs_space = gym.spaces.Dict({**obs_space.spaces, "observation": gym.spaces.Box(-np.inf, np.inf, (29,),
                                                                                       np.float32)})
        m_write, m_id = [], None
        for r in range(args.repeat):
            m_id = f"bench/ant-{r}-v0"
            t = time.perf_counter()
            minari.create_dataset_from_buffers(m_id, buffers, observation_space=obs_space, action_space=act_space,
                                               algorithm_name="ou-noise", author="bench", author_email="-",
                                               code_permalink="-", description="bench", data_format="hdf5")
            m_write.append(time.perf_counter() - t)
        m_bytes = dir_bytes(os.path.join(tmp, "minari", "bench", f"ant-{args.repeat - 1}-v0"))
        ds = minari.load_dataset(m_id)
        m_scan = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            for ep in ds.iterate_episodes():
                _ = ep.observations["observation"]
            m_scan.append(time.perf_counter() - t)
        mw, ms = min(m_write), min(m_scan)
        print(f"minari hdf5 (baseline): write {mw:.2f} s ({n / mw / 1e6:.2f} M tr/s), {m_bytes / 1e6:.0f} MB, "
              f"iterate_episodes {ms:.2f} s")

        root = os.path.join(tmp, "crl")
        print(f"{'compression':<24}{'write s':>9}{'x minari':>10}{'MB':>8}{'bytes x':>9}{'real-only x':>12}"
              f"{'load s':>8}{'x minari':>10}{'episodes s':>11}{'x minari':>10}{'verify MB/s':>12}")
        for comp in args.compressions.split(","):
            times = []
            for r in range(args.repeat):
                dt, man = write_crl(root, data, comp, f"bench/{comp}-{r}")
                times.append(dt)
            _, man_real = write_crl(root, real, comp, f"bench/{comp}-real")
            real_ratio = man_real["totals"]["bytes"] / dir_bytes(os.path.join(tmp, "minari", "bench",
                                                                            f"ant-{args.repeat - 1}-v0")) * (
                n / int(real["episode_offsets"][-1]))
            reader = DatasetStore(root).open(man["id"])
            loads, scans = [], []
            for _ in range(args.repeat):
                t = time.perf_counter()
                reader.load()
                loads.append(time.perf_counter() - t)
                t = time.perf_counter()
                for _ep in reader.iter_episodes():
                    pass
                scans.append(time.perf_counter() - t)
            rep = min((verify(DatasetStore(root), man["id"]) for _ in range(args.repeat + 1)), key=lambda r: r.seconds)
            assert rep.ok
            w, b, ld, sc = min(times), man["totals"]["bytes"], min(loads), min(scans)
            print(f"{comp:<24}{w:>9.2f}{mw / w:>10.2f}{b / 1e6:>8.0f}{b / m_bytes:>9.2f}{real_ratio:>12.2f}"
                  f"{ld:>8.2f}{ms / ld:>10.2f}{sc:>11.2f}{ms / sc:>10.2f}{rep.bytes / rep.seconds / 2**20:>12.0f}")
        print("x minari: Minari time / crl time (higher is faster); bytes x: crl bytes / Minari bytes; real-only x:"
              " the same ratio for the untiled real block (scaled per transition)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
