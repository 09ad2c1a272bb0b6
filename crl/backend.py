"""The backend the programs are traced for, and the XLA:CPU compiler options of the jits that contain the agent's
update (the trainers' epochs, bench_sgd): chosen once here, used by crl.fused_layer, crl.agent and the trainers."""

from __future__ import annotations

import jax


def on_cpu_backend() -> bool:
    """Whether the default backend is XLA:CPU (picks crl.fused_layer's CPU-only forms and the compiler options)."""
    return jax.default_backend() == "cpu"


# XLA:CPU compiler options for the jits that contain `CRLAgent.update` (the trainer's epoch, bench_sgd), via
# `cpu_compiler_options()`, chosen on the depth-64, batch-512 update (the A/B runs: bench/RESULTS.md, "CRL SGD step"):
# - YNNPACK takes only the matmuls; XLA's own emitter does the elementwise work around them;
# - 512-bit vectors for XLA's own loops: the exp/sigmoid of the LayerNorm-Swish fusions (a hint to LLVM's
#   vectoriser; it helps on CPUs with AVX-512);
# - region-based copy insertion: without it XLA copies every kernel of the scanned state in each loop iteration,
#   because the actor reads the pre-update critic while the critic's Adam writes the new one.
# Per jit, so nothing else in the process changes; not passed on other backends.
CPU_COMPILER_OPTIONS: dict[str, str | int | bool] = {
    "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT",
    "xla_cpu_prefer_vector_width": 512,
    "xla_cpu_copy_insertion_use_region_analysis": True,
}


def cpu_compiler_options() -> dict[str, str | int | bool] | None:
    """CPU_COMPILER_OPTIONS when the default backend is the CPU, else None (the options are XLA:CPU's only)."""
    return dict(CPU_COMPILER_OPTIONS) if on_cpu_backend() else None
