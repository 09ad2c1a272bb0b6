"""Dataset store benchmark: 1M ant-like transitions, crl Zarr shards vs Minari (hdf5) in the same run.

Data (`--source`), all real Ant physics (obs state 29 = qpos 15 + qvel 14, action 8, goal = torso xy):
- `crl-mujoco` (default): crl's `ant_u_maze` model (`env.mj_model`: maze walls, initial pose, start/goal cells,
  healthy-z termination, 5 substeps) stepped by MuJoCo's C engine under a smooth Ornstein-Uhlenbeck policy,
  episodes of up to 500 steps;
- `crl-mjx`: the MJX env itself with crl.rollout's uniform random policy in `--envs` auto-reset envs (slow to
  compile and run on a CPU; random actions make the ant unhealthy fast, so episodes are short);
- `gym-ant`: Gymnasium's ant.xml on a plane, same policy as crl-mujoco.
`--real` transitions are simulated; to reach `--transitions` that block is tiled, each copy translated in the plane
(x, y and goals shifted by a per-tile offset) with fresh episode ids. The compression ratio of the untiled real
block is printed too ("real-only"), so tiling cannot flatter the byte counts.

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


def mujoco_rollouts(source: str, n_transitions: int, seed: int = 0) -> tuple[dict[str, np.ndarray], dict]:
    """Real Ant physics stepped by MuJoCo's C engine under a smooth noisy (Ornstein-Uhlenbeck) policy.

    source "crl-mujoco": crl's own ant_u_maze model (env.mj_model: maze walls, JaxGCRL proportions, its initial
    pose, start/goal cells, healthy-z termination, 5 substeps); "gym-ant": Gymnasium's ant.xml on a plane.
    Observation = concat(qpos, qvel) (29), achieved goal = torso xy, success = within 0.5 of the goal.
    """
    import mujoco

    from crl.datasets.schema import concat_batches

    rng = np.random.default_rng(seed)
    if source == "crl-mujoco":
        from crl.envs import make

        env = make("ant_u_maze", episode_length=EP_LEN)
        model, spec, cfg = env.mj_model, env.spec.to_dict(), env.config
        q0 = np.asarray(model.key_qpos[0], np.float64)
        starts = np.array([env.maze.cell_to_xy(c) for c in env.maze.start_cells()])
        goals = np.array([env.maze.cell_to_xy(c) for c in env.maze.goal_cells()])
        noise, jitter, substeps = cfg.reset_noise_scale, cfg.start_jitter, cfg.substeps
        z_lo, z_hi = cfg.healthy_z_range
        thr = cfg.success_threshold
    else:
        import gymnasium

        from crl.datasets.synthetic import synthetic_spec

        xml = Path(gymnasium.__file__).parent / "envs/mujoco/assets/ant.xml"
        model = mujoco.MjModel.from_xml_path(str(xml))
        spec = {**synthetic_spec(29, 8, 2), "name": "gym_ant", "nq": 15, "nv": 14}
        q0 = np.asarray(model.qpos0, np.float64)
        starts, goals = np.zeros((1, 2)), rng.uniform(-8, 8, (64, 2))
        noise, jitter, substeps, z_lo, z_hi, thr = 0.1, 4.0, 5, -np.inf, np.inf, 0.5
    data = mujoco.MjData(model)
    lo, hi = model.actuator_ctrlrange[:, 0], model.actuator_ctrlrange[:, 1]
    batches, rows, e = [], 0, 0
    while rows < n_transitions:
        mujoco.mj_resetData(model, data)
        qpos = q0 + rng.uniform(-noise, noise, model.nq)
        qpos[:2] = starts[rng.integers(len(starts))] + rng.uniform(-jitter, jitter, 2)
        qpos[3:7] /= np.linalg.norm(qpos[3:7])
        data.qpos[:], data.qvel[:] = qpos, noise * rng.normal(size=model.nv)
        goal = goals[rng.integers(len(goals))].astype(np.float32)
        qs, vs, acts, a, term = [], [], [], np.zeros(model.nu), False
        for _ in range(EP_LEN):
            qs.append(data.qpos.astype(np.float32))
            vs.append(data.qvel.astype(np.float32))
            a = np.clip(a - 0.15 * a + 0.3 * rng.normal(size=model.nu), -1, 1)  # OU noise
            acts.append(a.astype(np.float32))
            data.ctrl[:] = lo + (a + 1) * 0.5 * (hi - lo)
            mujoco.mj_step(model, data, nstep=substeps)
            if not z_lo <= data.qpos[2] <= z_hi:
                term = True
                break
        qs.append(data.qpos.astype(np.float32))
        vs.append(data.qvel.astype(np.float32))
        q, v, T = np.stack(qs), np.stack(vs), len(acts)
        obs, xy = np.concatenate([q, v], 1), q[:, :2]
        success = np.linalg.norm(xy[1:] - goal, axis=-1) <= thr
        end = np.zeros(T, bool)
        end[-1] = True
        batches.append({
            "observation": obs[:-1], "action": np.stack(acts), "achieved_goal": xy[:-1],
            "desired_goal": np.repeat(goal[None], T, 0), "reward": success.astype(np.float32), "success": success,
            "terminal": end & term, "truncation": end & (not term), "qpos": q[:-1], "qvel": v[:-1],
            "episode_id": np.full(T, e, np.int64), "step": np.arange(T, dtype=np.int32),
            "final_observation": obs[-1:], "final_achieved_goal": xy[-1:], "final_desired_goal": goal[None],
            "final_qpos": q[-1:], "final_qvel": v[-1:], "episode_offsets": np.array([0, T], np.int64),
        })
        rows += T
        e += 1
    return concat_batches(batches), spec


def crl_ant_rollouts(n_transitions: int, num_envs: int, seed: int = 0) -> tuple[dict[str, np.ndarray], dict]:
    """Real crl MJX ant_u_maze rollouts (random policy, auto-reset), as one episode batch + the env spec."""
    import jax

    from crl.datasets.schema import concat_batches
    from crl.envs import make
    from crl.envs.wrappers import AutoReset
    from crl.pipelines.episodes import EpisodeAssembler
    from crl.rollout import make_unroll, random_policy

    env = make("ant_u_maze", episode_length=EP_LEN)
    auto = AutoReset(env, num_envs)
    unroll = make_unroll(auto, random_policy(env.action_size), length=100)
    asm = EpisodeAssembler(num_envs, env.state_size, env.goal_indices)
    key = jax.random.PRNGKey(seed)
    key, k0 = jax.random.split(key)
    state = auto.reset(k0)
    out, rows = [], 0
    while rows < n_transitions:
        key, k = jax.random.split(key)
        state, tr = unroll(state, k)
        b = asm.add(jax.device_get(tr))
        if b is not None:
            out.append(b)
            rows += int(b["episode_offsets"][-1])
    data = concat_batches(out)
    data["episode_id"] = data["episode_id"].astype(np.int64)
    return data, env.spec.to_dict()


def tile(block: dict[str, np.ndarray], n_transitions: int) -> dict[str, np.ndarray]:
    """Repeat the real block, translating each copy in the plane (x, y, goals) and renumbering episodes."""
    rows = int(block["episode_offsets"][-1])
    n_tiles = -(-n_transitions // rows)
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
                v += k * (int(block["episode_id"].max()) + 1)
            out[name].append(v)
    full = {k: np.concatenate(v) for k, v in out.items()}
    off = block["episode_offsets"]
    full["episode_offsets"] = np.concatenate([[0]] + [off[1:] + k * rows for k in range(n_tiles)]).astype(np.int64)
    return full


def batches(data: dict[str, np.ndarray], episodes: int = 100):
    from crl.datasets.schema import slice_episodes

    n = data["episode_offsets"].size - 1
    for a in range(0, n, episodes):
        yield slice_episodes(data, a, min(n, a + episodes))


def write_crl(root: str, data: dict[str, np.ndarray], compression: str, name: str, spec: dict) -> tuple[float, dict]:
    from crl.datasets import DatasetStore

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
    ap.add_argument("--source", choices=["crl-mujoco", "crl-mjx", "gym-ant"], default="crl-mujoco")
    ap.add_argument("--envs", type=int, default=200, help="parallel envs for --source crl-mjx")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench_store_")
    os.environ["MINARI_DATASETS_PATH"] = os.path.join(tmp, "minari")
    try:
        t0 = time.perf_counter()
        if args.source == "crl-mjx":
            real, spec = crl_ant_rollouts(args.real, args.envs)
        else:
            real, spec = mujoco_rollouts(args.source, args.real)
        data = tile(real, args.transitions)
        n = int(data["episode_offsets"][-1])
        raw = sum(v.nbytes for v in data.values())
        n_eps = data["episode_offsets"].size - 1
        print(f"data ({args.source}): {n} transitions, {n_eps} episodes ({real['episode_offsets'][-1]} real "
              f"transitions, tiled), {raw / 1e6:.0f} MB raw in memory, generated in {time.perf_counter() - t0:.0f} s")

        import gymnasium as gym
        import minari

        from crl.datasets import DatasetStore
        from crl.datasets.minari_io import episode_buffers, minari_spaces
        from crl.pipelines.verify import verify

        obs_space, act_space = minari_spaces(spec, data["action"])
        # Minari baseline content (the export): Dict observations, actions, rewards, terminations,
        # truncations, infos {qpos, qvel}. crl stores success, episode_id and step on top, so bytes favour Minari.
        # The baseline's `observation` is the state part (the export appends the goal; that would only add bytes).
        ss = int(spec["state_size"])
        buffers = [
            replace(b, infos={k: b.infos[k] for k in ("qpos", "qvel")},
                    observations={**b.observations, "observation": b.observations["observation"][:, :ss]})
            for b in episode_buffers(data)
        ]
        obs_space = gym.spaces.Dict({**obs_space.spaces, "observation": gym.spaces.Box(-np.inf, np.inf, (ss,),
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
                dt, man = write_crl(root, data, comp, f"bench/{comp}-{r}", spec)
                times.append(dt)
            _, man_real = write_crl(root, real, comp, f"bench/{comp}-real", spec)
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
