"""Executor specs: the names ``Context.make_with`` takes, each with what makes its executor.

Policy: every spec is one entry of :data:`EXECUTOR_SPECS`, registered here,
once, with the callable that makes its executor from ``make_with``'s keyword
arguments; ``make_with`` only looks names up.  An unknown name is an
:class:`~gpuudf.ExecutorSpecException` that lists the registered specs in the
order they were registered; an argument the executor does not take, or a
value it refuses, is one too, naming the spec.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gpuudf.errors import ExecutorSpecException
from gpuudf.executors.dask_executor import DaskExecutor
from gpuudf.executors.executor import Executor
from gpuudf.executors.inline import InlineExecutor
from gpuudf.executors.local import LocalExecutor
from gpuudf.registry import Registry

__all__ = ["EXECUTOR_SPECS", "ExecutorFactory", "make_executor"]

#: Makes an executor from ``make_with``'s keyword arguments.
ExecutorFactory = Callable[..., Executor]


def _unknown_spec(spec: object, names: tuple[str, ...]) -> ExecutorSpecException:
    return ExecutorSpecException(f"unknown executor {spec!r}; available: {', '.join(map(repr, names))}")


#: Every spec ``Context.make_with`` takes, by name.
EXECUTOR_SPECS: Registry[ExecutorFactory] = Registry("executor", _unknown_spec)
EXECUTOR_SPECS.register("inline", InlineExecutor)  # keyword device, default "cpu"
EXECUTOR_SPECS.register("local", LocalExecutor)  # keywords cpus and cudas
EXECUTOR_SPECS.register("dask", DaskExecutor.make_with_spec)  # cpus, cudas (or gpus), dashboard_address


def make_executor(spec: str, **kwargs: Any) -> Executor:
    """The executor registered as ``spec``, made with ``kwargs``.

    Raises
    ------
    ExecutorSpecException
        For a spec nobody registered (listing the registered ones), or
        arguments the executor does not take or refuses.
    """
    factory = EXECUTOR_SPECS.lookup(spec)
    try:
        return factory(**kwargs)
    except (TypeError, ValueError) as exc:  # an argument it does not take, a worker count or device that cannot be
        msg = f"make_with({spec!r}): {exc}"
        raise ExecutorSpecException(msg) from exc
