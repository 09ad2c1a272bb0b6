"""Goal reaching: success rate, time at goal and final distance of a policy on an env's own task, with 95% CIs
and a per-goal-cell table (`crl.goal_rollouts.evaluate_goals`, the function the trainer evaluates with).

Key: a checkpoint evaluated without `seed` uses the trainer's key for that checkpoint,
`fold_in(PRNGKey(train_seed + 1), step)`, and the run's `num_eval_envs` episodes in the run's env, so the numbers
equal the `eval/*` the trainer logged at that epoch in metrics.jsonl. `seed=S` uses `PRNGKey(S)` instead (any
policy; default 0 for oracle/random).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax

from crl.eval.policies import Policy, resolve_policy
from crl.eval.registry import Evaluator, register
from crl.eval.results import default_out, header, write_json
from crl.goal_rollouts import evaluate_goals, summarize_goals
from crl.loop import eval_key as loop_eval_key


def eval_key(policy: Policy, seed: int | None) -> tuple[jax.Array, str]:
    """(key, how it was made): the trainer's eval key for a checkpoint without `seed`, else PRNGKey(seed)."""
    if seed is None and policy.loaded is not None:
        train_seed = int(policy.loaded.config.get("seed", 0))
        key = loop_eval_key(train_seed, policy.step)
        return key, f"trainer: fold_in(PRNGKey({train_seed} + 1), {policy.step})"
    s = 0 if seed is None else int(seed)
    return jax.random.PRNGKey(s), f"PRNGKey({s})"


def goals_for(policy: Policy, episodes: int | None = None, seed: int | None = None) -> dict[str, Any]:
    """Run `evaluate_goals` for a resolved policy; the summary (no files written). Episodes default to the run's
    `num_eval_envs` for a checkpoint, else 64."""
    if episodes is None:
        episodes = int(policy.loaded.config.get("num_eval_envs", 64)) if policy.loaded is not None else 64
    key, key_text = eval_key(policy, seed)
    env = policy.env
    fn = jax.jit(lambda k: evaluate_goals(env, policy.act, k, episodes, keyed=policy.keyed))
    per_episode = jax.device_get(fn(key))
    goal_cells = env.maze.goal_cells() if hasattr(env, "maze") else None
    summary = summarize_goals(per_episode, goal_cells)
    return {**header("goals", policy, seed, episodes, key=key_text), **summary}


def run_goals(
    policy: str,
    env: str | None = None,
    episodes: int | None = None,
    seed: int | None = None,
    out: str | Path | None = None,
    episode_length: int | None = None,
    step: int | None = None,
    plot: bool = True,
) -> dict[str, Any]:
    """`crl-eval goals`: evaluate policy `policy` (`checkpoint:RUN_DIR`, `oracle`, `random`) in `env` (default:
    the run's env) for `episodes` episodes; write `goals.json` (+ `goals.png`, goal cells coloured by success)
    into `out` (default `RUN_DIR/eval`, or `eval_results/<kind>_<env>`) and return the result dict:
    `eval/success`, `eval/time_at_goal`, `eval/final_dist`, `ci95`, `per_goal_cell`, plus the header fields
    (run, checkpoint_step, env, seed, key, episodes, code_version, json/png paths)."""
    overrides = {} if episode_length is None else {"episode_length": int(episode_length)}
    pol = resolve_policy(policy, env, step=step, env_overrides=overrides)
    result = goals_for(pol, episodes, seed)
    out_dir = Path(out) if out is not None else default_out(pol, pol.env.spec.name)
    if plot and hasattr(pol.env, "maze"):
        from crl.eval.plots import plot_goals

        png = out_dir / "goals.png"
        out_dir.mkdir(parents=True, exist_ok=True)
        plot_goals(pol.env.maze, result, png)
        result["png"] = str(png)
    result["json"] = str(out_dir / "goals.json")
    write_json(out_dir, "goals", result)
    return result


# ---- in `crl-eval report` ----------------------------------------------------------------------------------------
def _skip(info: Any) -> str | None:
    if info.is_ogbench or info.is_crl_maze:
        return None
    return f"env {info.env_name!r} is neither a crl maze nor an OGBench env"


def _settings(s: Any, info: Any) -> dict[str, Any]:
    if info.is_ogbench:
        return {"protocol": "ogbench", "episodes": s.goals_episodes, "seed": s.seed,
                "max_episode_steps": s.ogbench_max_episode_steps, "env": info.env_name}
    return {"episodes": s.goals_episodes, "seed": s.seed}


def _run(policy: str, step: int, s: dict[str, Any], out: Path) -> dict[str, Any]:
    if s.get("protocol") == "ogbench":
        from crl.eval.ogbench_protocol import evaluate_ogbench

        r = evaluate_ogbench(s["env"], policy, s["episodes"] or 20, s["seed"] or 0,
                             max_episode_steps=s["max_episode_steps"], step=step, out_dir=out)
        return {**r, "png": str(out / "ogbench_tasks.png")}
    return run_goals(policy, None, s["episodes"], s["seed"], out, step=step)


def _numbers(r: dict[str, Any]) -> str:
    from crl.eval.report_render import ci_text

    return f"{r['eval/success']:.3f}{ci_text((r.get('ci95') or {}).get('eval/success'))}"


def _blocks(r: dict[str, Any]) -> list[Any]:
    from crl.eval.report_render import ci_text, fmt

    if r.get("protocol") == "ogbench":
        out: list[Any] = [
            ("p", f"OGBench protocol on `{r['gym_id']}` (ogbench {r.get('ogbench_version')}): "
                  f"{r['episodes_per_task']} episodes per task, seed {r['seed']}, episode limit "
                  f"{r['max_episode_steps']}. Overall success (mean over tasks) **{r['overall_success']:.3f}**; "
                  f"observation layout {(r.get('policy_info') or {}).get('observation_layout', '?')}."),
            ("table", ["task", "start (i, j)", "goal (i, j)", "episodes", "success", "95% CI", "mean steps"],
             [[t["task_name"], str(tuple(t["init_ij"])), str(tuple(t["goal_ij"])), fmt(t["episodes"]),
               fmt(t["success"]), ci_text(t["ci95"]).strip(), fmt(t["mean_steps"], 1)] for t in r["tasks"]])]
        return out + [("p", f"Deviation from the protocol: {d}.") for d in r.get("deviations", [])]
    ci = r.get("ci95") or {}
    out = [("p", f"{r['episodes']} episodes, key {r.get('key')}: success **{_numbers(r)}**, "
                 f"time at goal {fmt(r['eval/time_at_goal'], 1)}{ci_text(ci.get('eval/time_at_goal'), 1)}, "
                 f"final distance {fmt(r['eval/final_dist'], 2)}{ci_text(ci.get('eval/final_dist'))}.")]
    rows = [[str(tuple(c["cell"])) if "cell" in c else str(c["goal_cell"]), fmt(c["episodes"]), fmt(c["success"]),
             fmt(c["time_at_goal"], 1), fmt(c["final_dist"], 2)] for c in r.get("per_goal_cell", [])]
    if rows:
        out.append(("table", ["goal cell", "episodes", "success", "time at goal", "final dist"], rows))
    return out


register(Evaluator("goals", _skip, _settings, _run, _blocks, "goals success [95% CI]", _numbers))
