"""`crl-train`: train deep CRL agents online, offline from a dataset, or fine-tune any run online.

    crl-train online   --env point_u_maze --out runs/u
    crl-train offline  --dataset local/point-u-oracle-v0 --depth 4,16 --seed 0,1 --out runs/offline
    crl-train finetune --from runs/offline/d4-s0 --dataset local/point-u-oracle-v0 --out runs/ft

Options are generated from the config dataclasses (crl.config_options): a field's docstring is its help, and only the
options given override the preset. The resolved config is written to `<out>/config.json`. A user error (bad value,
occupied --out, diverged run) prints one line and exits 2.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import click

from crl.cli_errors import run_group
from crl.config import AgentConfig, LearnerConfig, TrainConfig, require_online_critic
from crl.config_options import config_options, given
from crl.errors import ConfigError
from crl.finetune import FinetuneConfig
from crl.offline import BC_PRESETS, OfflineConfig


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


def int_list(text: str | None, name: str) -> list[int] | None:
    """'4,16,64' -> [4, 16, 64] (None stays None)."""
    if text is None:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--{name} {text!r}: expected comma-separated integers, e.g. 4,16,64") from None


def _lr(overrides: dict[str, Any], lr: float | None) -> dict[str, Any]:
    if lr is not None:
        overrides.update(actor_lr=lr, critic_lr=lr, alpha_lr=lr)
    return overrides


def _summary(last: dict[str, Any], out: str) -> str:
    evals = ", ".join(f"{k} {last[k]:.3g}" for k in ("eval/success", "eval/time_at_goal", "eval/final_dist")
                      if k in last)
    counts = ", ".join(f"{last[k]:,} {k.replace('_', ' ')}" for k in ("env_steps", "sgd_steps") if k in last)
    early = " (stopped early: evaluation held 1.0)" if last.get("stopped_early") else ""
    return f"done: {counts}{early}; {evals or 'no evaluation'}; outputs in {out}"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Train deep contrastive RL agents: online in MJX envs, offline from datasets, fine-tuned online."""


_COMMON = dict(exclude=("env_overrides", "train_env_overrides"))
PRINT_CONFIG = click.option("--print-config", is_flag=True,
                            help="Print the resolved config as JSON and exit (nothing runs, nothing is written).")


def _print(config: Any) -> None:
    click.echo(json.dumps(config, indent=2, sort_keys=True))


def _online_options(fn: Any) -> Any:
    fn = config_options(TrainConfig, LearnerConfig, AgentConfig, **_COMMON)(fn)
    fn = click.option("--train-env", "train_env", multiple=True, metavar="KEY=VALUE|task",
                      help="Env option for the TRAINING envs only (repeatable; replaces the preset's: cpu trains "
                           "with start_cells=free new_goal_on_success=true). 'task' = train on the evaluation task "
                           "itself.")(fn)
    fn = click.option("--lr", type=float, help="Adam learning rate of actor, critic and alpha.")(fn)
    fn = click.option("--preset", type=click.Choice(["cpu", "paper"]), default="cpu", show_default=True,
                      help="cpu: learns point mazes in minutes on a laptop CPU; paper: the scaling-crl GPU values.")(fn)
    fn = click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")(fn)
    fn = click.option("--out", type=click.Path(file_okay=False), required=True, help="Run folder (created).")(fn)
    fn = PRINT_CONFIG(fn)
    return click.option("--no-progress", is_flag=True, help="No progress bar (logs go to metrics.jsonl).")(fn)


def resumed_config(built: Any, folder: str | Path, kind: str, overrides: dict[str, Any]) -> Any:
    """`built` unless `folder` holds a `kind` run (its config.json): then that run's own config with the options
    given again, so a resumed run keeps its seed, sizes and recipe. A run of another kind keeps `built`; the driver
    then refuses it with the command to use."""
    path = Path(folder) / "config.json"
    if path.exists():
        record = json.loads(path.read_text())
        if record.get("kind") == kind:
            return type(built).from_dict(record["config"]).replace(**overrides)
    return built


def online_config(cls: type, preset: str, lr: float | None, train_env: tuple[str, ...],
                   options: dict[str, Any], resume_from: str | None = None, kind: str = "online") -> Any:
    """The preset with the options given; with --resume (`resume_from` = --out), the run's own config instead."""
    overrides = _lr(given(options), lr)
    if train_env:
        overrides["train_env_overrides"] = parse_env_options(train_env)
    config = cls.preset(preset, **overrides)
    return resumed_config(config, resume_from, kind, overrides) if resume_from else config


@cli.command()
@_online_options
def online(preset: str, out: str, resume: bool, lr: float | None, train_env: tuple[str, ...], no_progress: bool,
           print_config: bool, **options: Any) -> None:
    """Train online in vectorised MJX envs; writes config.json, metrics.jsonl, checkpoints/, learning_curve.png.

    --resume continues the run in --out with its own config; only the budget and cadences may be given anew.

    The cpu preset stops once 2 evaluations in a row scored success 1.0 (--stop-when-solved 0 runs the whole
    --total-env-steps budget)."""
    from crl.train import run

    config = online_config(TrainConfig, preset, lr, train_env, options, out if resume else None)
    if print_config:
        return _print(config.validate().to_dict())
    click.echo(_summary(run(config, None, out, resume=resume, progress=not no_progress), out))


@cli.command()
@click.option("--dataset", required=True, help="Dataset or split id NAMESPACE/NAME-vN (`crl-data list`).")
@click.option("--out", type=click.Path(file_okay=False), required=True,
              help="Run folder; with several depths/seeds, one sub-folder per learner (d4-s0, d64-s0, ...).")
@click.option("--depth", "depths", help="Critic depth(s), comma-separated: one learner per depth, e.g. 4,16,64.")
@click.option("--seed", "seeds", help="Seed(s), comma-separated: one learner per seed, e.g. 0,1,2.")
@click.option("--steps", "total_sgd_steps", type=int, help="Total SGD steps per learner (default 10,000).")
@click.option("--bc-preset", type=click.Choice(sorted(BC_PRESETS)),
              help="OGBench's BC weight for the task family (pointmaze 0.03, antmaze 0.1); sets --bc-alpha.")
@click.option("--lr", type=float, help="Adam learning rate of actor, critic and alpha.")
@click.option("--workers", type=int, default=0, show_default=True,
              help="Train the learners as Dask tasks on a LocalCluster of N workers (0 = one after another).")
@click.option("--scheduler", help="Run the learners on an existing Dask scheduler (ADDRESS) instead.")
@click.option("--resume", is_flag=True, help="Continue the run(s) in --out from their last checkpoints.")
@click.option("--no-progress", is_flag=True, help="No progress bar (logs go to metrics.jsonl).")
@PRINT_CONFIG
@config_options(OfflineConfig, LearnerConfig, AgentConfig, exclude=("dataset", "depth", "seed", "total_sgd_steps"))
def offline(dataset: str, out: str, depths: str | None, seeds: str | None, bc_preset: str | None,
            lr: float | None, workers: int, scheduler: str | None, resume: bool, no_progress: bool,
            print_config: bool, **options: Any) -> None:
    """Train deep CRL offline from a dataset or a stitching split (the same networks and critic loss as online).

    Evaluates in the dataset's own env (rebuilt from its manifest), and on a split per BFS distance
    (eval/success_d<d>, in/out-of-distribution means); on data generated or imported from OGBench, with OGBench's
    5-task protocol in its own env (eval/success, eval/task<i>_success; --ogbench-episodes per task). Several
    depths/seeds give one run folder each; they run one after another, or as Dask tasks (--workers / --scheduler),
    a failed learner retried once."""
    from crl.learners import learner_folders, run_learners
    from crl.offline import learner_grid

    if workers and scheduler:
        raise ConfigError("--workers starts a LocalCluster, --scheduler joins an existing one: give one of them")
    overrides = _lr(given(options), lr)
    if bc_preset is not None:
        overrides["bc_alpha"] = BC_PRESETS[bc_preset]
    config = OfflineConfig().replace(dataset=dataset, **overrides)
    depth_list = int_list(depths, "depth") or [config.agent.depth]
    seed_list = int_list(seeds, "seed") or [config.seed]
    for d in depth_list:
        config.replace(depth=d).learner.validate()
    grid = learner_grid(config, depth_list, seed_list)
    if resume:  # each learner keeps its own config; only the options given again change it
        folders = learner_folders(grid, out)
        grid = [(name, resumed_config(cfg, folders[name], "offline", {
                    **overrides, "dataset": dataset, **({"depth": cfg.agent.depth} if depths else {}),
                    **({"seed": cfg.seed} if seeds else {})}))
                for name, cfg in grid]
    if print_config:
        return _print({name: cfg.to_dict() for name, cfg in grid})
    results = run_learners(grid, out, resume=resume, progress=not no_progress, workers=workers,
                           scheduler=scheduler)
    for name, last in results.items():
        click.echo(f"{name}: {_summary(last, out)}" if isinstance(last, dict) else f"{name}: FAILED {last}")
    if any(not isinstance(v, dict) for v in results.values()):
        raise ConfigError(f"{sum(not isinstance(v, dict) for v in results.values())} learner(s) failed (see above)")


@cli.command()
@click.option("--from", "init_from", required=True, type=click.Path(exists=True, file_okay=False),
              help="Any run folder (offline, online, finetune) or a collector's dataset version folder.")
@click.option("--dataset", help="Mix this dataset into every SGD batch (RLPD-style symmetric sampling).")
@click.option("--offline-ratio", type=float,
              help="Fraction of each batch drawn from --dataset (default 0.5 when a dataset is given).")
@click.option("--bc-decay-steps", type=int,
              help="Decay --bc-alpha linearly to 0 over this many SGD steps (0 = keep it constant).")
@_online_options
def finetune(init_from: str, dataset: str | None, offline_ratio: float | None, bc_decay_steps: int | None,
             preset: str, out: str, resume: bool, lr: float | None, train_env: tuple[str, ...], no_progress: bool,
             print_config: bool, **options: Any) -> None:
    """Fine-tune a run's learner online (same options as `online`; the budget is --total-env-steps).

    The replay starts empty; the networks, optimiser states and evaluated actor come from --from. Its first
    evaluation (before any update) equals the source run's final evaluation with the same eval seed."""
    from crl.checkpoint import learner_config_of
    from crl.finetune import SOURCE_FIELDS, run_finetune

    for name in SOURCE_FIELDS:
        if options.get(name) is not None:
            raise ConfigError(f"--{name.replace('_', '-')} comes from the source run (--from); drop it")
    config = online_config(FinetuneConfig, preset, lr, train_env, options, out if resume else None, "finetune")
    if not resume:  # agent options not given keep the source's values; those given apply
        asked = _lr(given(options), lr)
        src_agent = learner_config_of(init_from).agent
        config = config.replace(**{f.name: getattr(src_agent, f.name) for f in dataclasses.fields(AgentConfig)
                                   if f.name not in asked})
    if options.get("env") is None:
        config = config.replace(env="")  # the source run's env, rebuilt from its spec
    extra = given({"init_from": init_from, "dataset": dataset, "offline_ratio": offline_ratio,
                   "bc_decay_steps": bc_decay_steps})
    config = config.replace(**extra)
    require_online_critic(config.learner)
    if print_config:
        return _print(config.to_dict())
    click.echo(_summary(run_finetune(config, out, resume=resume, progress=not no_progress), out))


def main(argv: list[str] | None = None) -> None:
    """Console entry point: CrlError or a usage error -> one line on stderr, exit 2."""
    run_group(cli, "crl-train", argv)


if __name__ == "__main__":
    main()
