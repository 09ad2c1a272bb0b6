"""Claim 1's bug check: is a freshly initialised deep actor already collapsed? Log-std statistics of the Actor at
initialisation (seed 0) on 512 random inputs (N(0, 3^2), observation size 6), by depth and width."""

import jax
import jax.numpy as jnp

from crl.networks import Actor

for depth in (4, 16, 64):
    for width in (128, 256):
        actor = Actor(depth=depth, action_size=2, width=width)
        x = jax.random.normal(jax.random.PRNGKey(1), (512, 6)) * 3
        params = actor.init(jax.random.PRNGKey(0), x)
        mean, log_std = jax.jit(actor.apply)(params, x)
        print(depth, width, "mean |mu|", float(jnp.abs(mean).mean()), "log_std mean", float(log_std.mean()),
              "frac at min", float((log_std < -4.9).mean()), "frac at max", float((log_std > 1.9).mean()))
