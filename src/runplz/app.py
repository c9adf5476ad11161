"""The public API: `App` and the `Function` objects its decorator makes."""

from __future__ import annotations

import atexit
import functools
import os
import weakref
import re
import sys
from types import MappingProxyType
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from .domain.bind import BindRequest, bind_request
from .domain.call import FunctionCall
from .domain.config import BrevConfig, LocalConfig, ModalConfig, SlurmConfig, SshConfig
from .domain.errors import ConfigError, DirectCall, ImageMissing, NoBackend, UsageError
from .domain.fan_out import map_inputs, map_options, plain_inputs
from .domain.payload import check_call_args
from .domain.spec import FunctionSpec, function_spec
from .domain.validate import show

# Set by the target-side runtime: there, `bind` is a no-op (the script is being
# imported to find its function, not to dispatch again).
in_runtime = False

_APP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


class Function:
    """A function marked with ``@app.function``. Call ``.remote()`` or ``.local()``."""

    def __init__(self, app: "App", func: Callable[..., Any], spec: FunctionSpec) -> None:
        self.app = app
        self.spec = spec
        self._func = func
        functools.update_wrapper(self, func)

    @property
    def name(self) -> str:
        return self.spec.name

    def local(self, *args: Any, **kwargs: Any) -> Any:
        """Run the body here, in this Python process."""
        return self._func(*args, **kwargs)

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        """Run on the bound backend and return the function's (JSON) return value.

        A remote exception raises `runplz.RemoteError` with the remote type,
        message, traceback text and exit code.
        """
        return self.app._dispatch(self, args, kwargs)

    def map(
        self,
        *iterables: Iterable[Any],
        kwargs: Mapping[str, Any] | None = None,
        order_outputs: bool = True,
        return_exceptions: bool = False,
        concurrency: int | None = None,
    ) -> Iterator[Any]:
        """Run the function once per input on the bound backend; yields the results.

        Input ``i`` is ``(iterables[0][i], iterables[1][i], ...)`` (zipped, up
        to the shortest), each with ``kwargs``. All inputs are read and checked
        as JSON first: a bad one raises `ArgumentError` naming its index before
        anything runs. Nothing runs until you iterate.

        Results come in input order (``order_outputs=False``: as they finish).
        The first failure raises `RemoteError` naming its input (``.index``),
        and the rest are cancelled; with ``return_exceptions=True`` each failure
        is yielded in its place instead. Input ``i`` writes its files under
        ``<outputs>/<i>/``. ``concurrency`` (runplz's addition): at most that
        many inputs run at once; the default depends on the backend.
        """
        inputs = map_inputs(self.name, iterables, star=False)
        return self.app._map(self, inputs, kwargs, order_outputs, return_exceptions, concurrency)

    def starmap(
        self,
        iterable: Iterable[Sequence[Any]],
        kwargs: Mapping[str, Any] | None = None,
        order_outputs: bool = True,
        return_exceptions: bool = False,
        concurrency: int | None = None,
    ) -> Iterator[Any]:
        """Like `map`, with each item of ``iterable`` (a tuple) spread as the arguments."""
        inputs = map_inputs(self.name, (iterable,), star=True)
        return self.app._map(self, inputs, kwargs, order_outputs, return_exceptions, concurrency)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise DirectCall(
            f"{self.name} is a runplz Function: call {self.name}.remote(...) to run it on the "
            f"bound backend, or {self.name}.local(...) to run it in this process"
        )

    def __repr__(self) -> str:
        return f"<runplz.Function {self.name}>"


def _run_map(backend: Any, calls: list[FunctionCall], options: Any, container: Any, outputs: str, name: str):
    from .services.fan_out import fan_out, item_calls

    console, clock = container.console(), container.clock()
    map_id, items = item_calls(calls, outputs, clock)
    console.info(
        f"mapping {name} over {len(items)} input{'s' if len(items) != 1 else ''}, "
        f"at most {options.concurrency} at a time (map {map_id}; outputs in {outputs}/<index>)"
    )
    yield from fan_out(backend, items, options, console, clock, name)


def _close_at_exit(backend: Any) -> None:
    ref = weakref.ref(backend)

    def close() -> None:
        alive = ref()
        if alive is not None:
            alive.close()

    atexit.register(close)


def _check_config(name: str, value: Any, kind: type) -> Any:
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise ConfigError(f"App {name} must be a {kind.__name__}; got {show(value)}")
    return value


class App:
    """A named group of functions and the backend they run on.

    One App per script. Configs default to their classes' defaults.
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        brev_config: BrevConfig | None = None,
        modal_config: ModalConfig | None = None,
        ssh_config: SshConfig | None = None,
        local_config: LocalConfig | None = None,
        slurm_config: SlurmConfig | None = None,
    ) -> None:
        if name is not None and (not isinstance(name, str) or not _APP_NAME.fullmatch(name)):
            raise ConfigError(
                "App name must be letters, digits, '.', '_' or '-' (at most 63, starting with a "
                f"letter or digit); got {show(name)}"
            )
        self.name = name or "app"
        self.brev_config = _check_config("brev_config", brev_config, BrevConfig)
        self.modal_config = _check_config("modal_config", modal_config, ModalConfig)
        self.ssh_config = _check_config("ssh_config", ssh_config, SshConfig)
        self.local_config = _check_config("local_config", local_config, LocalConfig)
        self.slurm_config = _check_config("slurm_config", slurm_config, SlurmConfig)
        caller = sys._getframe(1).f_globals.get("__file__")
        self.script: str | None = os.path.abspath(caller) if caller else None
        self._functions: dict[str, Function] = {}
        self._entrypoint: Callable[..., Any] | None = None
        self._backend: Any = None

    def __repr__(self) -> str:
        return f"<runplz.App {self.name!r}>"

    @property
    def registered_functions(self) -> Mapping[str, Function]:
        """The App's functions by name (read-only)."""
        return MappingProxyType(self._functions)

    @property
    def functions(self) -> Mapping[str, Function]:
        """The seed's name for `registered_functions` (read-only)."""
        return MappingProxyType(self._functions)

    @property
    def entrypoint(self) -> Callable[..., Any] | None:
        """The ``@app.local_entrypoint()`` function, if any."""
        return self._entrypoint

    def function(
        self,
        image: Any = None,
        gpu: str | None = None,
        num_gpus: int = 1,
        min_cpu: float | None = None,
        min_memory: float | None = None,
        min_gpu_memory: float | None = None,
        min_disk: float | None = None,
        timeout: int | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Callable[[Callable[..., Any]], Function]:
        """Mark a function to run on the backend. Validated here, at decoration."""
        if callable(image) and not hasattr(image, "base"):
            raise ImageMissing("use @app.function(image=...) with parentheses and an Image")

        def decorate(func: Callable[..., Any]) -> Function:
            name = getattr(func, "__name__", None)
            if not callable(func) or not isinstance(name, str) or not name.isidentifier():
                raise ConfigError(f"@app.function decorates a named def; got {show(func)}")
            if name in self._functions:
                raise ConfigError(f"App {self.name!r} already has a function named {name!r}")
            spec = function_spec(
                name,
                image=image,
                gpu=gpu,
                num_gpus=num_gpus,
                min_cpu=min_cpu,
                min_memory=min_memory,
                min_gpu_memory=min_gpu_memory,
                min_disk=min_disk,
                timeout=timeout,
                env=env,
            )
            function = Function(self, func, spec)
            self._functions[name] = function
            return function

        return decorate

    def local_entrypoint(self) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Mark the driver that runs on your machine (at most one per App)."""

        def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
            if not callable(func):
                raise ConfigError(f"@app.local_entrypoint() decorates a function; got {show(func)}")
            if self._entrypoint is not None:
                raise ConfigError(
                    f"App {self.name!r} already has a local entrypoint "
                    f"({self._entrypoint.__name__}); there can be at most one"
                )
            self._entrypoint = func
            return func

        return decorate

    def bind(
        self,
        backend: str,
        instance: str | None = None,
        host: str | None = None,
        outputs_dir: str = "out",
        build: bool = True,
        *,
        native: bool | None = None,
        container: Any = None,
    ) -> "App":
        """Choose where ``.remote()`` runs: "local", "ssh" (host=), "brev" (instance=) or "modal".

        ``native=True`` runs the local backend without Docker (like ``--native``);
        ``container`` lets an embedding tool pass its own `runplz.container.Container`.
        Returns the App, so calls chain: ``app.bind("local").run(...)``-style.
        """
        self._attach(bind_request(backend, instance, host, outputs_dir, build, native), container)
        return self

    def _attach(self, request: BindRequest, container: Any = None) -> None:
        if in_runtime:
            return
        from .container import backend_for, default_container

        self._release()
        container = container or default_container()
        self._backend = backend_for(container, request, self)
        # what `.map()` needs beside the backend: the console, the clock, the outputs folder
        self._map_tools = (container, os.path.abspath(os.path.expanduser(request.outputs_dir)))
        if callable(getattr(self._backend, "close", None)):
            _close_at_exit(self._backend)

    def _release(self) -> None:
        """Let the bound backend finish what outlives single calls (a named
        Brev box's ``on_finish``). Runs when the entrypoint ends, on a rebind,
        and at interpreter exit; closing twice is harmless. A map still under way
        on it is stopped first (its inputs cancelled and waited for); a caller
        still iterating it gets a `MapStopped` (a RuntimeError) at its next ``next()``."""
        maps = sys.modules.get("runplz.services.map_live")  # loaded once a map was made
        if maps is not None and self._backend is not None:
            maps.stop_maps(self._backend, why=f"App {self.name!r} is done")
        close = getattr(self._backend, "close", None)
        if callable(close):
            close()

    def _bound(self, function: Function, verb: str) -> str:
        """The script, once it is sure a call can be dispatched."""
        if self._backend is None:
            raise NoBackend(
                f"{function.name}.{verb}() has no backend: run the script with "
                f"`runplz local {os.path.basename(self.script or 'job.py')}` or call "
                "app.bind('local') first"
            )
        if not self.script:
            raise UsageError(f"App {self.name!r} must be defined in a script file to run remotely")
        return self.script

    def _dispatch(self, function: Function, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        plain_args, plain_kwargs = check_call_args(function.name, args, kwargs)
        script = self._bound(function, "remote")
        return self._backend.call(FunctionCall(self.name, function.spec, script, plain_args, plain_kwargs))

    def _map(
        self, function: Function, inputs: list[tuple[Any, ...]], kwargs: Any,
        order_outputs: Any, return_exceptions: Any, concurrency: Any,
    ) -> Iterator[Any]:
        """Check everything now; return the generator that runs the map when iterated."""
        plain = plain_inputs(function.name, inputs, kwargs)
        script = self._bound(function, "map")
        from .services.fan_out import default_concurrency

        backend = self._backend
        unsupported = getattr(backend, "map_unsupported", None)
        if isinstance(unsupported, str):
            raise UsageError(f"{function.name}.map() does not run on the {unsupported} backend yet; call .remote() per input")
        if concurrency is None:
            concurrency = default_concurrency(backend)
        options = map_options(order_outputs, return_exceptions, concurrency)
        calls = [FunctionCall(self.name, function.spec, script, args, kw) for args, kw in plain]
        tools = getattr(self, "_map_tools", None)  # set by each bind; absent if a backend was set by hand
        if tools is None:
            from .container import default_container

            tools = (default_container(), os.path.abspath("out"))
        container, outputs = tools
        return _run_map(backend, calls, options, container, outputs, function.name)
