"""`crl-data generate ogbench ENV`: OGBench's point-maze datasets regenerated offline, in OGBench's own env.

The recipe is OGBench's `data_gen_scripts/generate_locomaze.py` (v1.x) with the point-maze settings of its
`data_gen_scripts/commands.sh`, re-implemented here (the script itself is not part of the `ogbench` package):

- env: `gymnasium.make('pointmaze-<size>-v0', terminate_at_goal=False, max_episode_steps=L)`, L = 1001 (navigate)
  or 201 (stitch); every episode runs its full L steps;
- start cell: uniform over free cells; goal cell: uniform over "vertex" cells (free cells that are not straight
  hallway cells) for navigate/explore, or uniform over the cells exactly 4 BFS steps from the start for stitch;
- the expert: a unit vector towards `env.get_oracle_subgoal(xy, goal_xy)` (explore: a random unit direction
  redrawn every 10 steps), plus Gaussian noise (0.5 for point mazes), clipped to [-1, 1];
- navigate: when `info['success']`, a new vertex goal is set with `env.set_goal`;
- rows: the pre-step observation, the action, `terminals` = the step ended the episode, `qpos`/`qvel` of the
  pre-step state; so an episode is L rows, L-1 transitions (crl.datasets.ogbench_io reads the last row as the
  final state, as OGBench's loader does).

Randomness follows OGBench's script, which draws from NumPy's global generator (as OGBench's env does for its
reset noise): that generator is seeded from `seed` for the run and restored afterwards, so a seed gives the same
dataset. OGBench also writes a `-val` file of `num_episodes // 10` more episodes; here the count is one number
(generate a second version with another seed for validation data).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from crl.errors import CrlError, DatasetError

_NAME = re.compile(r"^(?:ogbench:)?pointmaze-(?P<size>medium|large|giant|teleport)-(?P<kind>navigate|stitch|explore)"
                   r"(?:-v(?P<version>\d+))?$")
DEFAULTS = {"navigate": (1000, 1001, 0.5), "stitch": (5000, 201, 0.5), "explore": (1000, 1001, 0.5)}
"""kind -> (episodes, max_episode_steps, noise): OGBench's data_gen_scripts/commands.sh for pointmaze-medium/large
(navigate 1000 x 1001, stitch 5000 x 201, noise 0.5; OGBench ships no pointmaze explore set, so explore takes the
navigate sizes)."""
STITCH_CELLS = 4
"""Stitch episodes go to a goal exactly this many BFS cells from the start (generate_locomaze.py `adj_steps`)."""
GENERATOR = "crl.datasets.ogbench_gen (after OGBench data_gen_scripts/generate_locomaze.py)"


@dataclass(frozen=True)
class GenSpec:
    """What to generate: OGBench dataset name (normalised, with its `-v0`), its gym env, kind and sizes."""

    dataset_name: str
    gym_id: str
    kind: str
    episodes: int
    max_episode_steps: int
    noise: float
    seed: int


def parse_env(name: str) -> tuple[str, str, str]:
    """'pointmaze-medium-navigate' / 'ogbench:pointmaze-medium-navigate-v0' -> (dataset name with -v0, gym id,
    kind). Raises DatasetError naming the valid form."""
    m = _NAME.match(name.strip())
    if m is None:
        raise DatasetError(f"unknown OGBench env {name!r}: the generator makes point-maze datasets "
                           f"pointmaze-<medium|large|giant|teleport>-<navigate|stitch|explore>-v0, e.g. "
                           f"pointmaze-medium-navigate-v0 (ant and humanoid need OGBench's trained experts)")
    v = m["version"] or "0"
    return f"pointmaze-{m['size']}-{m['kind']}-v{v}", f"pointmaze-{m['size']}-v{v}", m["kind"]


def make_spec(env: str, episodes: int | None = None, max_episode_steps: int | None = None,
              noise: float | None = None, seed: int = 0) -> GenSpec:
    """Validated GenSpec with OGBench's defaults for what is not given."""
    ds, gym_id, kind = parse_env(env)
    d_eps, d_len, d_noise = DEFAULTS[kind]
    eps = d_eps if episodes is None else int(episodes)
    length = d_len if max_episode_steps is None else int(max_episode_steps)
    nz = d_noise if noise is None else float(noise)
    if eps < 1:
        raise DatasetError(f"--episodes {eps}: generate at least 1 episode (OGBench: {d_eps})")
    if length < 2:
        raise DatasetError(f"--episode-steps {length}: an episode needs >= 2 steps (OGBench: {d_len})")
    if nz < 0:
        raise DatasetError(f"--noise {nz} must be >= 0 (OGBench: {d_noise})")
    return GenSpec(ds, gym_id, kind, eps, length, nz, int(seed))


# ---- maze cells (OGBench's maze_map: 1 wall, 0 free; row i, column j) ------------------------------------------
def free_cells(maze_map: np.ndarray) -> list[tuple[int, int]]:
    """All free cells, row-major (the script's `all_cells`)."""
    return [(int(i), int(j)) for i, j in zip(*np.nonzero(maze_map == 0), strict=True)]


def vertex_cells(maze_map: np.ndarray) -> list[tuple[int, int]]:
    """Free cells that are not straight hallway cells (the script's `vertex_cells`, goals of navigate)."""
    m = maze_map
    out = []
    for i, j in free_cells(m):
        vertical = m[i - 1, j] == 0 and m[i + 1, j] == 0 and m[i, j - 1] == 1 and m[i, j + 1] == 1
        horizontal = m[i, j - 1] == 0 and m[i, j + 1] == 0 and m[i - 1, j] == 1 and m[i + 1, j] == 1
        if not (vertical or horizontal):
            out.append((i, j))
    return out


def bfs_cells(maze_map: np.ndarray, start: tuple[int, int]) -> np.ndarray:
    """BFS distance (in cells) from `start` to every cell; -1 for walls and unreachable cells."""
    dist = np.full(maze_map.shape, -1, np.int64)
    dist[start] = 0
    q = deque([start])
    while q:
        i, j = q.popleft()
        for di, dj in ((-1, 0), (0, -1), (1, 0), (0, 1)):
            ni, nj = i + di, j + dj
            if (0 <= ni < maze_map.shape[0] and 0 <= nj < maze_map.shape[1] and maze_map[ni, nj] == 0
                    and dist[ni, nj] == -1):
                dist[ni, nj] = dist[i, j] + 1
                q.append((ni, nj))
    return dist


def layout_record(u: Any) -> dict[str, Any]:
    """OGBench's maze as recorded in a manifest: map, cell size, offset, and the crl layout text of the same maze.

    OGBench places cell (i, j) at xy = (j * unit - offset_x, i * unit - offset_y); crl's Maze places text cell
    (r, c) at (r * cell_size, c * cell_size). With offset = unit (OGBench's locomazes) the transposed map minus its
    first row and column (walls) is a crl layout whose cells sit at exactly OGBench's coordinates, so crl's maze
    geometry (stitching splits, BFS distances) reads OGBench's x-y goals unchanged."""
    from crl.ogbench_tasks import maze_geometry

    m, unit, ox, oy = maze_geometry(u)
    rec: dict[str, Any] = {"maze_map": m.tolist(), "maze_unit": unit, "maze_offset": [ox, oy]}
    if ox == unit and oy == unit:
        chars = np.where(m == 1, "#", ".").astype("<U1")
        for t in getattr(u, "task_infos", []):  # OGBench's evaluation tasks: start S, goal G
            chars[tuple(t["init_ij"])] = "S"
            chars[tuple(t["goal_ij"])] = "G"
        rec["layout_text"] = "\n".join("".join(row) for row in chars.T[1:, 1:]) + "\n"
    return rec


def ogbench_layout(gym_id: str) -> dict[str, Any]:
    """layout_record of OGBench's env `gym_id` (used by the import too, so both describe the maze alike)."""
    from crl.ogbench_tasks import make_env

    env = make_env(gym_id)
    try:
        return layout_record(env.unwrapped)
    finally:
        env.close()


# ---- the generator ---------------------------------------------------------------------------------------------
def generate_arrays(spec: GenSpec, debug: bool = False) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Run the recipe; returns OGBench's npz layout (observations, actions, terminals, qpos, qvel, float32 / bool)
    and an info dict (layout record; with `debug`, per-episode start/goal cells and the pre-noise directions)."""
    from crl.ogbench_tasks import GlobalNumpySeed, make_env

    env = make_env(spec.gym_id, spec.max_episode_steps, terminate_at_goal=False)  # as OGBench's script makes it
    u = env.unwrapped
    maze_map = np.asarray(u.maze_map)
    all_cells, vertices = free_cells(maze_map), vertex_cells(maze_map)
    n_rows = spec.episodes * spec.max_episode_steps
    ob_dim = int(np.prod(env.observation_space.shape))
    out = {"observations": np.zeros((n_rows, ob_dim), np.float32), "actions": np.zeros((n_rows, 2), np.float32),
           "terminals": np.zeros(n_rows, bool), "qpos": np.zeros((n_rows, u.model.nq), np.float32),
           "qvel": np.zeros((n_rows, u.model.nv), np.float32)}
    dbg: dict[str, list[Any]] = {"init_ij": [], "goal_ij": [], "direction": [], "goals_reached": []}
    row = 0
    with GlobalNumpySeed(spec.seed):
        env.action_space.seed(spec.seed)
        for _ in range(spec.episodes):
            init_ij = all_cells[np.random.randint(len(all_cells))]
            if spec.kind == "stitch":
                dist = bfs_cells(maze_map, init_ij)
                adj = [(int(i), int(j)) for i, j in zip(*np.nonzero(dist == STITCH_CELLS), strict=True)]
                goal_ij = adj[np.random.randint(len(adj))] if adj else init_ij
            else:
                goal_ij = vertices[np.random.randint(len(vertices))]
            ob, _ = env.reset(options={"task_info": {"init_ij": init_ij, "goal_ij": goal_ij}})
            dbg["init_ij"].append(init_ij)
            dbg["goal_ij"].append(goal_ij)
            reached, step, done, direction = 0, 0, False, np.zeros(2)
            while not done:
                if spec.kind == "explore":
                    if step % 10 == 0:
                        d = np.random.randn(2)
                        direction = d / (np.linalg.norm(d) + 1e-6)
                else:
                    xy = u.get_xy()
                    sub, _ = u.get_oracle_subgoal(xy, u.cur_goal_xy)
                    direction = (sub - xy) / (np.linalg.norm(sub - xy) + 1e-6)
                action = np.clip(direction + np.random.normal(0, spec.noise, 2), -1, 1)
                next_ob, _r, terminated, truncated, info = env.step(action)
                done = bool(terminated or truncated)
                if info["success"] and spec.kind == "navigate":
                    u.set_goal(vertices[np.random.randint(len(vertices))])
                    reached += 1
                out["observations"][row] = ob
                out["actions"][row] = action
                out["terminals"][row] = done
                out["qpos"][row] = info["prev_qpos"]
                out["qvel"][row] = info["prev_qvel"]
                if debug:
                    dbg["direction"].append(direction.copy())
                ob, step, row = next_ob, step + 1, row + 1
            dbg["goals_reached"].append(reached)
    layout = layout_record(u)
    env.close()
    if row != n_rows:  # every episode runs to its time limit (terminate_at_goal=False)
        raise CrlError(f"generator produced {row} rows, expected {n_rows}")
    info_out: dict[str, Any] = {"layout": layout}
    if debug:
        info_out.update({k: np.asarray(v) for k, v in dbg.items()})
    return out, info_out


def generate(store: Any, spec: GenSpec, name: str, parent: str | None = None) -> dict[str, Any]:
    """Generate `spec` and write it as the next version of `name` (nothing written on error); returns the
    manifest. The manifest's env spec is the one `crl-data import ogbench` writes for the same env."""
    from crl import code_version
    from crl.datasets.ogbench_io import import_arrays
    from crl.ogbench_tasks import ogbench_version, require_ogbench

    require_ogbench()
    data, info = generate_arrays(spec)
    provenance = {
        "source": "ogbench-generator", "generator": GENERATOR, "ogbench_version": ogbench_version(),
        "dataset_type": spec.kind, "gym_id": spec.gym_id, "seed": spec.seed, "episodes": spec.episodes,
        "max_episode_steps": spec.max_episode_steps, "action_noise": spec.noise,
        "recipe": "OGBench data_gen_scripts/generate_locomaze.py + commands.sh (pointmaze)",
        "goals": "hindsight: desired_goal = final achieved goal of the episode", "code_version": code_version(),
    }
    return import_arrays(store, data, name, f"ogbench:{spec.dataset_name}", provenance, info["layout"],
                         parent=parent)
