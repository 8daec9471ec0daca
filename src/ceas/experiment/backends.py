"""Where the cells of a grid execute: a local process pool (default) or a Ray cluster (extra ``ray``).

A backend runs one function call per cell and reports each call's outcome; it never retries on its own (the grid
counts attempts, see :mod:`ceas.experiment.grid`). Both take at most :attr:`Backend.capacity` calls at once, so
"running" in the progress bar is what runs.

* ``local``: ``concurrent.futures.ProcessPoolExecutor`` with ``workers`` processes, forked after the grid loaded its
  data sets. Workers die with the grid's process (``PR_SET_PDEATHSIG`` on Linux), so a grid killed with SIGKILL leaves
  no orphan writing into its run folders. A worker that dies (killed, out of memory) breaks the pool: the calls then
  in flight fail with that reason and the pool is started again.
* ``ray``: each call is a Ray task of 1 CPU (``max_retries=0``). Without an address a local Ray instance of
  ``workers`` CPUs is started and stopped with the grid; with ``address`` (``auto`` or ``HOST:PORT``) the grid joins
  that cluster as a driver and uses all of its CPUs. Every node must have the same ceas installed (the cell checks
  the code version it runs against the driver's) and see the grid's output folder at the same path to reuse runs.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
from collections.abc import Callable
from typing import Any, Protocol

from ceas.errors import ConfigError

__all__ = ["BACKENDS", "Backend", "LocalBackend", "RayBackend", "make_backend"]

BACKENDS = ("local", "ray")

Outcome = tuple[Any, bool, Any]
"""(handle, succeeded, result or a one-line reason)."""


class Backend(Protocol):
    name: str
    capacity: int
    threads: int

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any: ...

    def wait(self, handles: list[Any], timeout: float) -> list[Outcome]: ...

    def close(self) -> None: ...


def reason_of(exc: BaseException) -> str:
    """One line: the exception's type and first message line."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _usable_cores() -> int:
    return (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )


def _die_with_parent(parent: int) -> None:
    """Pool initializer: ask Linux to SIGKILL this worker when the grid process dies."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


class LocalBackend:
    """A process pool of ``workers`` processes (see the module docstring)."""

    name = "local"

    def __init__(self, workers: int) -> None:
        self.capacity = max(1, int(workers))
        self.threads = max(1, _usable_cores() // self.capacity)
        self._pool: cf.ProcessPoolExecutor | None = None

    def _ensure(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(
                max_workers=self.capacity, initializer=_die_with_parent, initargs=(os.getpid(),)
            )
        return self._pool

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future:
        return self._ensure().submit(fn, *args)

    def wait(self, handles: list[cf.Future], timeout: float) -> list[Outcome]:
        done, _ = cf.wait(handles, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        out: list[Outcome] = []
        broken = False
        for fut in done:
            exc = fut.exception()
            if exc is None:
                out.append((fut, True, fut.result()))
            elif isinstance(exc, cf.process.BrokenProcessPool):
                broken = True
                out.append((fut, False, "worker process died (killed or out of memory)"))
            else:
                out.append((fut, False, reason_of(exc)))
        if broken and self._pool is not None:  # start a fresh pool for what remains
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """One ConfigError line unless ``HOST:PORT`` accepts a TCP connection within ``timeout_s``."""
    import socket

    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"--address {address!r} is not an address; allowed: auto or HOST:PORT")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ConfigError(
            f"--address {address!r}: no Ray cluster answers there ({reason_of(exc)}); allowed: the address "
            "'ray start --head' printed, or auto on a node of the cluster"
        ) from None


def _init_failure(address: str | None, exc: BaseException) -> str:
    """One line for a failed ``ray.init``; names token authentication when that is what refused the driver.

    ``ray start --head`` turns Ray's token authentication on whenever a token exists on its machine
    (``~/.ray/auth_token``, which any local ``ray.init`` writes, ``--backend ray`` without ``--address`` included),
    but a driver given an explicit address does not turn it on by itself (Ray's choice: it would send the token to
    whatever answers there). Ray then retries for about 20 s and reports only that it could not connect.
    """
    where = f"--address {address!r}" if address else "a local Ray instance"
    chain, seen = [], exc
    while seen is not None and len(chain) < 8:
        chain.append(f"{type(seen).__name__}: {seen}")
        seen = seen.__cause__ or seen.__context__
    if address and any(
        "InvalidAuthToken" in text or "AuthenticationError" in text for text in chain
    ):
        return (
            f"{where}: the cluster wants Ray token authentication and this driver does not send a token; allowed: "
            "RAY_AUTH_MODE=token with the cluster's token (~/.ray/auth_token, RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH),"
            " or --address auto on a node of the cluster"
        )
    return f"{where}: cannot start or join Ray: {reason_of(exc)}"


class RayBackend:
    """Ray tasks of 1 CPU each, on a local instance or the cluster at ``address`` (see the module docstring)."""

    name = "ray"
    threads = 1

    def __init__(self, workers: int, address: str | None) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError(
                "--backend ray needs the 'ray' extra; allowed: install it (pip install 'ceas[ray]') or "
                "--backend local"
            ) from None
        self._ray = ray
        self._owned = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "logging_level": "WARNING",
            }
            if address and address != "auto":
                _check_reachable(address)  # ray.init would retry an unreachable address for minutes
            try:
                if address:
                    ray.init(address=address, **kwargs)
                else:  # "local": a new instance, never a cluster that happens to run here
                    ray.init(address="local", num_cpus=max(1, int(workers)), **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ConfigError(_init_failure(address, exc)) from None
            self._owned = True
        cpus = int(ray.cluster_resources().get("CPU", 0))
        self.capacity = max(1, cpus)
        self._remote: dict[Callable[..., Any], Any] = {}

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        if fn not in self._remote:
            self._remote[fn] = self._ray.remote(num_cpus=1, max_retries=0)(fn)
        return self._remote[fn].remote(*args)

    def wait(self, handles: list[Any], timeout: float) -> list[Outcome]:
        ray = self._ray
        done, _ = ray.wait(handles, num_returns=1, timeout=timeout)
        out: list[Outcome] = []
        for ref in done:
            try:
                out.append((ref, True, ray.get(ref)))
            except ray.exceptions.RayTaskError as exc:
                cause = getattr(exc, "cause", None)
                out.append((ref, False, reason_of(cause) if cause is not None else reason_of(exc)))
            except (
                ray.exceptions.RayError
            ) as exc:  # worker or node died, object lost, out of memory
                out.append((ref, False, reason_of(exc)))
        return out

    def close(self) -> None:
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()
        self._owned = False


def check_choice(name: str, address: str | None) -> None:
    """One ConfigError line for an unknown backend or an address given to the local one."""
    if name not in BACKENDS:
        raise ConfigError(f"--backend: {name!r} is not a backend; allowed: {', '.join(BACKENDS)}")
    if name == "local" and address:
        raise ConfigError(
            f"--address {address!r} is not allowed with --backend local; allowed: --backend ray"
        )


def make_backend(name: str, *, workers: int, address: str | None = None) -> Backend:
    """The backend called ``name`` (one of :data:`BACKENDS`); one ConfigError line for a bad choice."""
    check_choice(name, address)
    if name == "local":
        return LocalBackend(workers)
    return RayBackend(workers, address)
