"""Which benchmarks exist. A benchmark module in bench/benchmarks/ registers itself:

    from bench.framework import Context, Row
    from bench.registry import register

    @register("recovery", title="Recovery overhead", order=10)
    def recovery(ctx: Context) -> list[Row]:
        ...

`python -m bench` imports every module of bench/benchmarks/ and runs the registered benchmarks
in `order` (then name); `--only recovery,pages` picks some.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import re
from collections.abc import Callable, Iterable

from bench.framework import Context, Row

BenchFunc = Callable[[Context], Iterable[Row]]

_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


@dataclasses.dataclass(frozen=True)
class Benchmark:
    name: str  # what --only takes
    title: str  # what the log and the JSON say
    func: BenchFunc
    order: int = 100


_registry: dict[str, Benchmark] = {}


def register(name: str, *, title: str, order: int = 100) -> Callable[[BenchFunc], BenchFunc]:
    if not _NAME.match(name):
        raise ValueError(f"benchmark name {name!r}: lower-case letters, digits, - and _ only")

    def decorate(func: BenchFunc) -> BenchFunc:
        known = _registry.get(name)
        if known is not None and known.func.__qualname__ != func.__qualname__:
            raise ValueError(f"two benchmarks named {name!r}: {known.func} and {func}")
        _registry[name] = Benchmark(name=name, title=title, func=func, order=order)
        return func

    return decorate


def discover(package: str = "bench.benchmarks") -> None:
    """Import every module of the package, so that their @register calls run."""
    pkg = importlib.import_module(package)
    for module in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"{package}.{module.name}")


def benchmarks() -> list[Benchmark]:
    return sorted(_registry.values(), key=lambda b: (b.order, b.name))


def select(names: Iterable[str] | None) -> list[Benchmark]:
    """The benchmarks named (all when None), in registry order; KeyError names unknown ones."""
    everything = benchmarks()
    if names is None:
        return everything
    wanted = {n.strip() for n in names if n.strip()}
    unknown = sorted(wanted - {b.name for b in everything})
    if unknown:
        raise KeyError(", ".join(unknown))
    return [b for b in everything if b.name in wanted]
