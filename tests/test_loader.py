"""Dataset loader: the goal law on dataset windows (and the same law as the replay's), goal mixtures, window rotation,
determinism, errors, bounded memory, and sampling inside a jitted SGD scan."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crl.agent import CRLAgent
from crl.buffer import init_buffer, insert, sample_indices
from crl.config import AgentConfig
from crl.datasets import DatasetStore
from crl.datasets.loader import DatasetWindow, WindowStream, sample_window, window_sampler
from crl.datasets.synthetic import episode_batch, synthetic_spec
from crl.errors import ConfigError, DatasetError
from crl.relabel import GoalMixture
from crl.transition import Transition

DISCOUNT = 0.9
SPEC = synthetic_spec()  # state 4, action 2, goal 2


def marked_batch(lengths: list[int], first: int = 0) -> dict[str, np.ndarray]:
    """Episodes whose state part and achieved goal are (step, episode), action (episode, step): a goal's source
    row can be read off the goal itself."""
    b = episode_batch(lengths, first_episode_id=first)
    step = np.concatenate([np.arange(n) for n in lengths]).astype(np.float32)
    ep = np.concatenate([np.full(n, first + e) for e, n in enumerate(lengths)]).astype(np.float32)
    b["observation"][:] = 0
    b["observation"][:, 0], b["observation"][:, 1] = step, ep
    b["achieved_goal"] = np.stack([step, ep], -1)
    b["action"] = np.stack([ep, step], -1)
    ends = np.stack([np.asarray(lengths, np.float32), first + np.arange(len(lengths), dtype=np.float32)], -1)
    b["final_achieved_goal"] = ends
    b["final_observation"] = np.concatenate([ends, np.zeros_like(ends)], -1)
    return b


def write(store: DatasetStore, name: str, lengths: list[int], shard_rows: int = 400, **kw) -> str:
    st = store.begin(name, SPEC)
    with st.writer("w0", shard_rows=shard_rows, **kw) as w:
        w.append(marked_batch(lengths))
    return st.commit()["id"]


def truncated_geometric_pmf(limits: np.ndarray, kmax: int) -> np.ndarray:
    """P(k) for k = 0..kmax of a uniformly drawn row with `limits` steps left (the law of crl.relabel)."""
    k = np.arange(1, kmax + 1)[None]
    L = limits[:, None]
    p = np.where(k <= L, DISCOUNT ** (k - 1) * (1 - DISCOUNT) / (1 - DISCOUNT ** L), 0.0)
    return np.concatenate([[0.0], p.mean(0)])


def draw(window: DatasetWindow, n: int, batch: int, *mixtures: GoalMixture | None, seed: int = 0, **kw):
    """n samples as n // batch batches (a batch may not exceed the window), flattened into one Batch."""
    sample = window_sampler(batch, DISCOUNT, *mixtures, **kw)
    keys = jax.random.split(jax.random.PRNGKey(seed), n // batch)
    out = jax.jit(jax.vmap(sample, in_axes=(None, 0)))(window, keys)
    return jax.tree.map(lambda x: np.asarray(x).reshape(-1, *x.shape[2:]), out)


COLUMNS = [[30, 50, 20], [100], [10, 10, 80], [60, 40]]  # episodes per replay column, 100 rows each


def replay_of(columns: list[list[int]]):
    """The same episodes in a crl.buffer replay: one env column each, episodes one after another."""
    rows = sum(columns[0])
    step = np.stack([np.concatenate([np.arange(n) for n in c]) for c in columns], 1)
    ep = np.stack([np.concatenate([np.full(n, i) for i, n in enumerate(c)]) for c in columns], 1)
    ep = ep + 10 * np.arange(len(columns))[None]
    obs = np.stack([step, ep, 0 * step, 0 * step, step, ep], -1).astype(np.float32)
    nxt = obs.copy()
    nxt[..., 0] += 1
    z = np.zeros((rows, len(columns)), np.float32)
    z2 = np.zeros((rows, len(columns), 2), np.float32)
    tr = Transition(obs=obs, action=z2, reward=z, terminal=z, truncation=z, success=z, next_obs=nxt, qpos=z2,
                    qvel=z2, next_qpos=z2, next_qvel=z2, episode_id=ep.astype(np.int32), step=step.astype(np.int32))
    buf = init_buffer(rows, len(columns), 4, 2, 2)
    return insert(buf, jax.tree.map(jnp.asarray, tr), 4, (0, 1))


def test_offsets_follow_the_truncated_geometric_law_as_in_the_replay(data_root: Path) -> None:
    store = DatasetStore()
    lengths = [n for c in COLUMNS for n in c]
    did = write(store, "test/law", lengths, shard_rows=150)  # several shards: windows read across them
    window, _ = next(WindowStream(store.open(did)).windows())
    n = 200_000
    batch = draw(window, n, 400)
    state, goal = batch.state, batch.goal
    assert (goal[:, 1] == state[:, 1]).all(), "a goal from another episode"
    k = (goal[:, 0] - state[:, 0]).astype(int)
    length = np.asarray(lengths)[state[:, 1].astype(int)]
    assert (k >= 1).all() and (k <= length - state[:, 0]).all()
    limits = np.concatenate([np.arange(m, 0, -1) for m in lengths])
    want = truncated_geometric_pmf(limits, 100)
    got = np.bincount(k, minlength=101) / n
    np.testing.assert_allclose(got, want, atol=4e-3)

    buf = replay_of(COLUMNS)
    _, _, k_replay, _ = jax.jit(sample_indices, static_argnums=(2, 3))(buf, jax.random.PRNGKey(1), n, DISCOUNT)
    got_replay = np.bincount(np.asarray(k_replay), minlength=101) / n
    np.testing.assert_allclose(got_replay, want, atol=4e-3)
    np.testing.assert_allclose(got, got_replay, atol=5e-3)


@pytest.mark.parametrize("geometric", [True, False])
def test_streamed_windows_never_take_goals_from_another_episode(data_root: Path, geometric: bool) -> None:
    store = DatasetStore()
    lengths = list(np.random.default_rng(0).integers(5, 60, 80))
    did = write(store, "test/stream", lengths)
    stream = WindowStream(store.open(did), window_rows=600, block_rows=50)
    assert stream.streaming and stream.num_windows >= 4
    goals = GoalMixture(geometric=geometric)
    for w, info in stream.windows(passes=1):
        b = draw(w, 4096, 512, goals, seed=info.index)
        state, goal = b.state, b.goal
        k = goal[:, 0] - state[:, 0]
        assert (goal[:, 1] == state[:, 1]).all() and (k >= 1).all()
        assert (goal[:, 0] <= np.asarray(lengths)[state[:, 1].astype(int)]).all()
        assert set(state[:, 1].astype(int)) <= set(info.episodes.tolist())


def test_mixtures_give_the_stated_fractions(data_root: Path) -> None:
    store = DatasetStore()
    lengths = [40] * 200
    did = write(store, "test/mix", lengths, shard_rows=4000)
    window, _ = next(WindowStream(store.open(did)).windows())
    critic, actor = GoalMixture(0.2, 0.5, 0.3), GoalMixture(0.5, 0.5, 0.0, geometric=False)
    n = 100_000
    b = draw(window, n, 5000, critic, actor, seed=3)
    state = b.state

    def kinds(goal: np.ndarray) -> np.ndarray:
        k = goal[:, 0] - state[:, 0]
        same = goal[:, 1] == state[:, 1]
        return np.stack([same & (k == 0), same & (k >= 1), ~same]).mean(1)  # current, future, other episode

    # a random goal lands in the sampled episode 1 time in 200 (counted as current/future here)
    np.testing.assert_allclose(kinds(np.asarray(b.goal)), [0.2, 0.5, 0.3], atol=0.01)
    np.testing.assert_allclose(kinds(np.asarray(b.actor_goal)), [0.5, 0.5, 0.0], atol=0.01)
    paper = jax.jit(window_sampler(64, DISCOUNT))(window, jax.random.PRNGKey(3))
    assert paper.actor_goal is None


def test_rotation_visits_every_episode_once_per_pass(data_root: Path) -> None:
    store = DatasetStore()
    lengths = list(np.random.default_rng(1).integers(5, 40, 120))
    did = write(store, "test/rot", lengths, shard_rows=300, chunk_rows=128)
    stream = WindowStream(store.open(did), window_rows=500, seed=7, block_rows=30)
    windows = list(stream.windows(passes=2))
    orders = []
    for p in range(2):
        held = [(w, info) for w, info in windows if info.pass_index == p]
        seen = []
        for w, info in held:  # checked after the pass: a window's device arrays never change under it
            assert w.capacity == 500 and int(w.size) == info.rows <= 500
            act = np.asarray(w.action)[: info.rows]
            eps, counts = np.unique(act[:, 0].astype(int), return_counts=True)
            np.testing.assert_array_equal(eps, info.episodes)
            np.testing.assert_array_equal(counts, np.asarray(lengths)[eps])  # whole episodes
            last = np.asarray(w.episode_last)[: info.rows]
            np.testing.assert_array_equal(act[last, 1], np.asarray(lengths)[eps].repeat(counts) - 1)
            np.testing.assert_array_equal(np.asarray(w.goal_now)[: info.rows], act[:, ::-1])
            seen.append(eps)
        everything = np.concatenate(seen)
        assert sorted(everything.tolist()) == list(range(len(lengths)))
        orders.append(everything)
    assert not np.array_equal(orders[0], orders[1]), "episode order is not reshuffled between passes"


def test_windows_are_deterministic_given_the_seed(data_root: Path) -> None:
    store = DatasetStore()
    did = write(store, "test/det", list(np.random.default_rng(2).integers(5, 40, 60)))
    runs = []
    for seed in (3, 3, 4):
        stream = WindowStream(store.open(did), window_rows=400, seed=seed, block_rows=20)
        runs.append([jax.tree.map(np.asarray, w) for w, _ in stream.windows(passes=2)])
    for a, b in zip(runs[0], runs[1], strict=True):
        jax.tree.map(np.testing.assert_array_equal, a, b)
    assert any(not np.array_equal(a.action, b.action) for a, b in zip(runs[0], runs[2], strict=False))
    sample = jax.jit(window_sampler(32, DISCOUNT, GoalMixture(0.2, 0.5, 0.3)))
    w = jax.tree.map(jnp.asarray, runs[0][0])
    jax.tree.map(np.testing.assert_array_equal, sample(w, jax.random.PRNGKey(5)), sample(w, jax.random.PRNGKey(5)))


def test_a_dataset_that_fits_is_one_window_loaded_once(data_root: Path) -> None:
    store = DatasetStore()
    did = write(store, "test/fit", [20, 30, 50])
    stream = WindowStream(store.open(did), window_rows=1000)
    assert not stream.streaming and stream.capacity == 100
    got = [w for w, _ in stream.windows(passes=3)]
    assert got[0] is got[1] is got[2] and int(got[0].size) == 100


def test_errors_name_the_problem(data_root: Path) -> None:
    store = DatasetStore()
    did = write(store, "test/err", [20, 30, 50])
    reader = store.open(did)
    with pytest.raises(ConfigError, match="batch size 64 exceeds"):
        WindowStream(reader, window_rows=60, batch_size=64)
    with pytest.raises(ConfigError, match="exceeds the window"):
        sample_window(next(iter(WindowStream(reader))), jax.random.PRNGKey(0), 101, DISCOUNT)
    with pytest.raises(DatasetError, match="episode 2 .* has 50 transitions, more than the window's 40"):
        WindowStream(reader, window_rows=40)
    with pytest.raises(ConfigError, match="not both"):
        WindowStream(reader, window_rows=40, window_bytes=4000)
    # the same version with achieved goals missing from its manifest (e.g. a foreign or future producer)
    src = data_root / "test" / "err" / "v0"
    dst = data_root / "test" / "nogoal" / "v0"
    shutil.copytree(src, dst)
    man = dst / "manifest.json"
    man.chmod(stat.S_IWUSR | stat.S_IRUSR)
    m = json.loads(man.read_text())
    del m["fields"]["achieved_goal"]
    man.write_text(json.dumps(m))
    with pytest.raises(DatasetError, match=r"lacks fields \['achieved_goal'\]"):
        WindowStream(store.open("test/nogoal-v0"))


def test_sample_window_feeds_a_jitted_sgd_scan(data_root: Path) -> None:
    """The learner's use: a lax.scan of CRLAgent.update over batches sampled on the device from a window."""
    store = DatasetStore()
    did = write(store, "test/sgd", [40] * 10)
    agent = CRLAgent(AgentConfig(depth=4, width=32, repr_dim=16), 4, 2, 2)
    sample = window_sampler(64, DISCOUNT)

    @jax.jit
    def epoch(st, window, key):
        def body(st, k):
            k_s, k_u = jax.random.split(k)
            return agent.update(st, sample(window, k_s), k_u)
        return jax.lax.scan(body, st, jax.random.split(key, 3))

    stream = WindowStream(store.open(did), window_rows=200, block_rows=40)
    st = agent.init(jax.random.PRNGKey(0))
    for w, info in stream.windows(passes=1):
        st, metrics = epoch(st, w, jax.random.PRNGKey(info.index))
    assert all(np.isfinite(np.asarray(v)).all() for v in metrics.values())
    assert epoch._cache_size() == 1  # every window has the same shapes: one compile


MEMORY_PROBE = textwrap.dedent("""
    import gc, sys, jax, numpy as np
    from crl.datasets import DatasetStore
    from crl.datasets.loader import WindowStream, trim_heap, window_sampler
    def status(key):
        return int(next(l for l in open("/proc/self/status") if l.startswith(key)).split()[1]) * 1024
    stream = WindowStream(DatasetStore(sys.argv[1]).open(sys.argv[2]), window_bytes=int(sys.argv[3]), seed=0)
    sample = jax.jit(window_sampler(256, 0.99))
    w = stream.load_window(stream.plan(0)[0])
    jax.block_until_ready(sample(w, jax.random.PRNGKey(0)))  # compile, then forget the warm-up window
    del w
    gc.collect()
    trim_heap()  # what the warm-up freed
    open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
    base = status("VmRSS")
    for w, info in stream.windows(passes=1):
        jax.block_until_ready(sample(w, jax.random.PRNGKey(info.index)))
    print(status("VmHWM") - base, stream.window_bytes, stream.num_windows)
""")


def test_memory_stays_bounded_on_a_dataset_several_times_the_window(data_root: Path) -> None:
    store = DatasetStore()
    lengths = [1000] * 1200  # 1.2 M transitions = 53 MB of window rows, 6+ windows of 8 MB
    st = store.begin("test/big", SPEC)
    with st.writer("w0") as w:
        for i in range(0, len(lengths), 200):
            w.append(episode_batch(lengths[i:i + 200], first_episode_id=i, seed=i))
    did = st.commit()["id"]
    window = 8 << 20
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(data_root), did, str(window)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    growth, window_bytes, windows = map(int, out.stdout.split()[-3:])
    assert windows >= 6
    # the window in use, the next one, decoded chunks (measured 2.0-2.4 windows of 8 MB); loading the whole
    # dataset would take 53 MB
    assert growth < 2 * window_bytes + (16 << 20), (growth, window_bytes)


def test_a_stitching_split_streams_like_a_dataset_of_its_segments(data_root: Path) -> None:
    """Windows of a split hold its segments as episodes: rows, next goals (the parent's next state at a cut) and
    episode ends all match the split reader's own `load()`."""
    import crl.envs
    from crl.datasets.stitch_split import stitch_split

    spec = crl.envs.make("point_u4_maze").spec.to_dict()
    cell = float(spec["config"]["cell_size"])
    corridor = [(2, 1), (1, 1), (1, 2), (1, 3), (2, 3), (3, 3), (4, 3), (5, 3), (5, 2), (5, 1), (4, 1)]
    rng = np.random.default_rng(0)
    paths = []
    for cells in (corridor, corridor[::-1], corridor[2:8], corridor + corridor[-2::-1]):
        pts = [np.multiply(a, cell) * (1 - t) + np.multiply(b, cell) * t
               for a, b in zip(cells, cells[1:], strict=False) for t in np.linspace(0, 1, 5, endpoint=False)]
        paths.append(np.asarray(pts + [np.multiply(cells[-1], cell)], np.float32) + rng.normal(0, 0.05, (1, 2)))
    b = episode_batch([len(p) - 1 for p in paths])
    obs = np.concatenate([np.concatenate([p[:-1], np.diff(p, axis=0)], axis=1) for p in paths])
    b["observation"], b["achieved_goal"] = obs, obs[:, :2]
    b["final_observation"] = np.stack([np.concatenate([p[-1], p[-1] - p[-2]]) for p in paths])
    b["final_achieved_goal"] = b["final_observation"][:, :2]
    store = DatasetStore()
    st = store.begin("test/u4", spec)
    with st.writer("w0", shard_rows=60) as w:
        w.append(b)
    split = store.open(stitch_split(store, st.commit()["id"], 3)["id"])
    assert split.num_episodes > len(paths)  # the rule cut some episodes into segments
    ref = split.load(["observation", "achieved_goal", "final_achieved_goal"])
    off = ref["episode_offsets"]
    want_next = np.concatenate([np.concatenate([ref["achieved_goal"][a + 1:z], ref["final_achieved_goal"][e][None]])
                                for e, (a, z) in enumerate(itertools.pairwise(off))])
    stream = WindowStream(split, window_rows=int(np.diff(off).max()) + 10, block_rows=1, seed=1)
    assert stream.streaming
    seen = []
    for w, info in stream.windows(passes=1):
        rows = np.concatenate([np.arange(off[e], off[e + 1]) for e in info.episodes])
        n = info.rows
        np.testing.assert_array_equal(np.asarray(w.state)[:n], ref["observation"][rows])
        np.testing.assert_array_equal(np.asarray(w.next_goal)[:n], want_next[rows])
        ends = np.concatenate([np.full(off[e + 1] - off[e], off[e + 1] - 1) for e in info.episodes])
        np.testing.assert_array_equal(rows[np.asarray(w.episode_last)[:n]], ends)
        seen += info.episodes.tolist()
    assert sorted(seen) == list(range(split.num_episodes))
