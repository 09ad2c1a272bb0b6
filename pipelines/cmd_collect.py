"""`crl-data collect`: record what a collector of a chosen depth (or a fixed policy) sees, as a new dataset version."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from crl.errors import ConfigError
from crl.pipelines.cli import get_store
from crl.policies import POLICIES


@click.command("collect")
@click.option("--env", "env_name", default="point_u_maze", show_default=True,
              help="Environment, e.g. point_u_maze, ant_big_maze, humanoid_u_maze.")
@click.option("--collector-depth", default=4, show_default=True, type=click.IntRange(min=4),
              help="Depth of the collector's residual networks (multiple of 4).")
@click.option("--width", type=click.IntRange(min=1), default=None, help="Collector network width (preset's if unset).")
@click.option("--policy", default="crl", show_default=True,
              help=f"What acts: {', '.join(POLICIES)}. 'crl' trains online and records everything it sees.")
@click.option("--deterministic", is_flag=True, help="Checkpoint policies: act with the mean action.")
@click.option("--action-noise", default=0.0, show_default=True, type=float,
              help="Gaussian action-noise std for fixed policies (noisy expert).")
@click.option("--goal-schedule", type=click.Choice(["episode", "navigate"]), default="episode", show_default=True,
              help="'episode': one goal per episode; 'navigate': a new goal whenever one is reached.")
@click.option("--env-steps", default=100_000, show_default=True, type=click.IntRange(min=1),
              help="Env steps to record (all envs and workers together; each worker rounds its share up to whole "
                   "epochs of num-envs x unroll-length). Episodes still running at the end are recorded as truncated.")
@click.option("--dataset", default=None, help="Target NAMESPACE/NAME (default local/<env>-<policy>-d<depth>).")
@click.option("--num-envs", type=click.IntRange(min=1), default=None, help="Parallel envs per worker.")
@click.option("--unroll-length", type=click.IntRange(min=2), default=None, help="Steps per env per epoch.")
@click.option("--episode-length", type=click.IntRange(min=2), default=None, help="Episode length override.")
@click.option("--batch-size", type=click.IntRange(min=2), default=None, help="CRL batch size (policy crl).")
@click.option("--sgd-steps", type=click.IntRange(min=1), default=None, help="SGD steps per epoch (policy crl).")
@click.option("--preset", type=click.Choice(["cpu", "paper"]), default="cpu", show_default=True,
              help="Training preset of a 'crl' collector.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of worker 0 (worker i: seed + i).")
@click.option("--shard-rows", default=262_144, show_default=True, type=click.IntRange(min=1), help="Rows per shard.")
@click.option("--checkpoint-every", default=50, show_default=True, type=click.IntRange(min=1),
              help="Epochs between resume checkpoints.")
@click.option("--eval-every", default=10, show_default=True, type=click.IntRange(min=0),
              help="Epochs between evaluations of a 'crl' collector (0: never).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Collectors at once on a Dask cluster (LocalCluster unless --scheduler).")
@click.option("--scheduler", default=None, help="Address of an existing Dask scheduler (tcp://host:8786).")
@click.option("--resume", is_flag=True, help="Continue an interrupted collection of the same options.")
@click.option("--checkpoints", type=click.Choice(["scratch", "bucket"]), default="scratch", show_default=True,
              help="A root on object storage: keep resume checkpoints in the local scratch folder ($CRL_SCRATCH_DIR) "
                   "only, or also upload each into the staging version ('bucket'), so --resume works on any host.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
@click.option("--dask-log", type=click.Choice(["debug", "info", "warning", "error"]), default="warning",
              show_default=True, help="Least severe Dask log lines shown with --workers/--scheduler (info: all of "
                                      "the scheduler's, nannies' and workers' lines).")
@click.option("--print-config", is_flag=True,
              help="Print the resolved collection config as JSON and exit (nothing runs, nothing is written).")
@click.pass_context
def collect_cmd(ctx: click.Context, env_name: str, collector_depth: int, width: int | None, policy: str,
                deterministic: bool, action_noise: float, goal_schedule: str, env_steps: int, dataset: str | None,
                num_envs: int | None, unroll_length: int | None, episode_length: int | None,
                batch_size: int | None, sgd_steps: int | None, preset: str, seed: int, shard_rows: int,
                checkpoint_every: int, eval_every: int, workers: int, scheduler: str | None, resume: bool,
                checkpoints: str, progress: bool, dask_log: str, print_config: bool) -> None:
    """Collect a trajectory dataset: every transition a collector of depth D produces, from its first step.

    \b
    The default collector is a CRL agent of depth --collector-depth training online in the MJX env (the paper's
    collector/learner experiment: the dataset is exactly what a depth-D collector saw); its final checkpoint is
    stored with the dataset. Fixed policies (random, oracle, checkpoint:PATH) roll out without training.
    Prints the new version's id, counts and the next commands.

    \b
    Example:
      crl-data collect --env point_u_maze --collector-depth 4 --env-steps 50000 --dataset local/point-u
    """
    from crl import enable_compile_cache
    from crl.pipelines.collection import describe, run_collection
    from crl.pipelines.collector import CollectConfig

    enable_compile_cache()

    overrides = {k: v for k, v in (("batch_size", batch_size), ("sgd_steps", sgd_steps)) if v is not None}
    name = dataset or f"local/{env_name.replace('_', '-')}-{policy.split(':')[0]}-d{collector_depth}"
    config = CollectConfig(
        env=env_name, dataset=name, collector_depth=collector_depth, width=width, policy=policy,
        deterministic=deterministic, action_noise=action_noise, goal_schedule=goal_schedule, env_steps=env_steps,
        num_envs=num_envs, unroll_length=unroll_length, episode_length=episode_length, seed=seed, preset=preset,
        train_overrides=overrides, shard_rows=shard_rows, checkpoint_every=checkpoint_every, eval_every=eval_every,
        workers=workers, checkpoints=checkpoints,
    )
    if dask_log != "warning" and workers == 1 and scheduler is None:
        raise ConfigError(f"--dask-log {dask_log} applies to Dask workers only; add --workers N or --scheduler")
    if print_config:
        click.echo(json.dumps(asdict(config.validate()), indent=2, sort_keys=True))
        return
    manifest = run_collection(config, get_store(ctx), resume=resume, scheduler=scheduler, show_progress=progress,
                              dask_log=dask_log)
    click.echo(describe(manifest))


COMMANDS = [collect_cmd]
