"""What a function asks of its backend: image, hardware, time limit, environment."""

from __future__ import annotations

from typing import Any, Mapping

import attrs

from .errors import ConfigError, ImageMissing
from .image import Image
from .validate import env_mapping, is_number, show


@attrs.frozen
class FunctionSpec:
    """A validated ``@app.function(...)`` decoration."""

    name: str
    image: Image
    gpu: str | None = None
    num_gpus: int = 1
    min_cpu: float | None = None
    min_memory: float | None = None
    min_gpu_memory: float | None = None
    min_disk: float | None = None
    timeout: int | None = None  # None: no cap outside Modal (see domain/limits.py)
    env: Mapping[str, str] = attrs.field(factory=dict)

    @property
    def wants_gpu(self) -> bool:
        return self.gpu is not None or self.min_gpu_memory is not None


def _bad(name: str, field: str, wanted: str, value: Any) -> ConfigError:
    return ConfigError(f"@app.function {field}= for {name!r} must be {wanted}; got {show(value)}")


def function_spec(
    name: str,
    *,
    image: Any,
    gpu: Any = None,
    num_gpus: Any = 1,
    min_cpu: Any = None,
    min_memory: Any = None,
    min_gpu_memory: Any = None,
    min_disk: Any = None,
    timeout: Any = None,
    env: Any = None,
) -> FunctionSpec:
    """Validate a decoration; every mistake is a `ConfigError` naming the field."""
    if not isinstance(image, Image):
        wanted = "an Image (e.g. Image.from_registry('python:3.11-slim'))"
        raise ImageMissing(f"@app.function image= for {name!r} must be {wanted}; got {show(image)}")
    if gpu is not None and (not isinstance(gpu, str) or not gpu.strip()):
        raise _bad(name, "gpu", "a non-empty GPU name such as 'A100' or None", gpu)
    for field, value in (
        ("min_cpu", min_cpu),
        ("min_memory", min_memory),
        ("min_gpu_memory", min_gpu_memory),
        ("min_disk", min_disk),
    ):
        if value is not None and (not is_number(value) or value <= 0 or value == float("inf")):
            raise _bad(name, field, "a positive number or None", value)
    if isinstance(num_gpus, bool) or not isinstance(num_gpus, int) or num_gpus < 1:
        raise _bad(name, "num_gpus", "a positive int", num_gpus)
    if num_gpus > 1 and gpu is None and min_gpu_memory is None:
        raise ConfigError(
            f"@app.function num_gpus={num_gpus} for {name!r} needs gpu= or min_gpu_memory= "
            "to say which GPUs"
        )
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1):
        raise _bad(name, "timeout", "a positive int (seconds) or None", timeout)
    checked_env = env_mapping("@app.function", f"env for {name!r}", env)
    return FunctionSpec(
        name=name,
        image=image,
        gpu=gpu.strip() if gpu is not None else None,
        num_gpus=num_gpus,
        min_cpu=min_cpu,
        min_memory=min_memory,
        min_gpu_memory=min_gpu_memory,
        min_disk=min_disk,
        timeout=timeout,
        env=checked_env,
    )
