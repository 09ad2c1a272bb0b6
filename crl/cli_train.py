"""`crl-train`: train deep CRL agents. `crl-train online --env point_u_maze --depth 4 --out runs/u`.

Options map onto a preset's TrainConfig (only the options given override it); the resolved config is written to
`<out>/config.json`. A user error (bad value, occupied --out, diverged run) prints one line and exits 2.
"""

from __future__ import annotations

from typing import Any

import click

from crl.cli_common import run_group

# option name -> TrainConfig / AgentConfig field
_FIELDS = {
    "depth": "depth", "actor_depth": "actor_depth", "width": "width", "repr_dim": "repr_dim",
    "batch_size": "batch_size", "num_envs": "num_envs", "unroll_length": "unroll_length", "sgd_steps": "sgd_steps",
    "replay_size": "replay_size", "min_replay_size": "min_replay_size", "total_env_steps": "total_env_steps",
    "episode_length": "episode_length", "eval_every": "eval_every", "num_eval_envs": "num_eval_envs",
    "checkpoint_every": "checkpoint_every", "seed": "seed", "activation": "activation", "energy": "energy",
    "layer_norm": "layer_norm", "residual": "residual", "symmetric_infonce": "symmetric_infonce",
    "discount": "discount", "logsumexp_penalty": "logsumexp_penalty", "actor_ema": "actor_ema",
}


def parse_env_options(items: tuple[str, ...]) -> dict[str, Any]:
    """KEY=VALUE strings -> env overrides (true/false, ints, floats, else text); 'task' alone -> {}."""
    if items == ("task",):
        return {}
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE (e.g. start_cells=free) or 'task'",
                                     param_hint="--train-env")
        value: Any = text
        if text.lower() in ("true", "false"):
            value = text.lower() == "true"
        else:
            for cast in (int, float):
                try:
                    value = cast(text)
                    break
                except ValueError:
                    pass
        out[key] = value
    return out


@click.group()
def cli() -> None:
    """Train deep contrastive RL agents."""


@cli.command()
@click.option("--env", "env_name", default=None, help="Environment name (crl.envs.make), e.g. point_u_maze.")
@click.option("--preset", type=click.Choice(["cpu", "paper"]), default="cpu", show_default=True,
              help="cpu: learns point mazes in minutes on a laptop CPU; paper: the scaling-crl GPU values.")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Run folder (created).")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--depth", type=int, help="Critic depth: Dense layers in residual blocks (multiple of 4).")
@click.option("--actor-depth", type=int, help="Actor depth (default: same as --depth).")
@click.option("--width", type=int, help="Hidden width.")
@click.option("--repr-dim", type=int, help="Representation size of phi and psi.")
@click.option("--batch-size", type=int, help="Transitions per SGD step.")
@click.option("--num-envs", type=int, help="Parallel training envs.")
@click.option("--unroll-length", type=int, help="Env steps per env per epoch.")
@click.option("--sgd-steps", type=int, help="SGD steps per epoch.")
@click.option("--replay-size", type=int, help="Replay capacity (transitions).")
@click.option("--min-replay-size", type=int, help="Transitions collected before SGD starts.")
@click.option("--total-env-steps", type=int, help="Training budget (env steps).")
@click.option("--episode-length", type=int, help="Override the env's episode length.")
@click.option("--eval-every", type=int, help="Evaluate every N epochs.")
@click.option("--num-eval-envs", type=int, help="Episodes per evaluation.")
@click.option("--checkpoint-every", type=int, help="Checkpoint every N epochs.")
@click.option("--seed", type=int, help="Random seed.")
@click.option("--activation", type=click.Choice(["swish", "relu"]), help="Hidden activation.")
@click.option("--energy", type=click.Choice(["l2", "dot"]), help="Critic energy.")
@click.option("--layer-norm/--no-layer-norm", default=None, help="LayerNorm in hidden layers.")
@click.option("--residual/--no-residual", default=None, help="Residual connections.")
@click.option("--symmetric-infonce/--forward-infonce", default=None, help="Add the backward InfoNCE term.")
@click.option("--discount", type=float, help="Geometric goal-offset discount gamma.")
@click.option("--logsumexp-penalty", type=float, help="Coefficient of the logsumexp^2 penalty.")
@click.option("--actor-ema", type=float,
              help="Per-epoch Polyak coefficient of the evaluated/exported actor (0 = the live actor).")
@click.option("--lr", type=float, help="Adam learning rate of actor, critic and alpha.")
@click.option("--train-env", "train_env", multiple=True, metavar="KEY=VALUE|task",
              help="Env option for the TRAINING envs only (repeatable; replaces the preset's: cpu trains with "
                   "start_cells=free new_goal_on_success=true). 'task' = train on the evaluation task itself.")
@click.option("--no-progress", is_flag=True, help="No progress bar (logs still go to metrics.jsonl).")
def online(env_name: str | None, preset: str, out: str, resume: bool, lr: float | None,
           train_env: tuple[str, ...], no_progress: bool, **options: Any) -> None:
    """Train online in vectorised MJX envs; writes config.json, metrics.jsonl, checkpoints/, learning_curve.png."""
    from crl.config import TrainConfig
    from crl.train import run

    overrides = {_FIELDS[k]: v for k, v in options.items() if v is not None}
    if env_name is not None:
        overrides["env"] = env_name
    if lr is not None:
        overrides.update(actor_lr=lr, critic_lr=lr, alpha_lr=lr)
    if train_env:
        overrides["train_env_overrides"] = parse_env_options(train_env)
    config = TrainConfig.preset(preset, **overrides)
    last = run(config, None, out, resume=resume, progress=not no_progress)
    summary = ", ".join(f"{k} {last[k]:.3g}" for k in ("eval/success", "eval/time_at_goal", "eval/final_dist")
                        if k in last)
    click.echo(f"done: {last.get('env_steps', 0):,} env steps; {summary}; outputs in {out}")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: CrlError or a usage error -> one line on stderr, exit 2."""
    run_group(cli, "crl-train", argv)


if __name__ == "__main__":
    main()
