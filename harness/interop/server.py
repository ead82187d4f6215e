"""Start ``harness serve``: load the backend, bind the port and run the HTTP server.

The request and response logic is in :mod:`harness.interop.serve`, the HTTP layer (uvicorn,
Starlette; the ``[serve]`` extra) in :mod:`harness.interop.serve_http`, imported here on call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.interop.serve import ServeOptions
from harness.loop.policy import Policy

if TYPE_CHECKING:
    from harness.interop.serve_http import Server


def make_server(
    policy: Policy,
    port: int,
    model: str,
    max_batch: int = 8,
    verbose: bool = False,
    options: ServeOptions | None = None,
) -> Server:
    """A bound :class:`harness.interop.serve_http.Server` for ``policy`` on 127.0.0.1:``port`` (0: a free
    port; ``options`` overrides everything); run it with ``serve_forever()`` (in a thread is fine)."""
    from harness.interop.serve_http import Server

    options = options or ServeOptions(port=port, max_batch=max_batch, verbose=verbose)
    return Server(policy, model, options)


def serve(model: str, model_args: dict[str, str], options: ServeOptions) -> None:
    """Load the backend, then serve until interrupted (``harness serve``)."""
    from harness.backends import BackendContext, split_model
    from harness.backends.options import MissingExtra
    from harness.plugins import Harness

    try:
        from harness.interop.serve_http import bind, run_server
    except ImportError as exc:
        raise MissingExtra(
            f"harness serve needs uvicorn, starlette and pydantic ({exc.name} is missing): "
            "pip install 'pixel-harness[serve]'"
        ) from exc
    sock = bind(options)  # before the model loads: a port in use fails in seconds, not after minutes
    try:
        harness = Harness()
        prefix, rest = split_model(model)
        context = BackendContext(model_args=dict(model_args), tasks=harness.tasks)
        policy = harness.backend(prefix)(rest, context)
    except BaseException:
        sock.close()
        raise
    run_server(policy, model, options, sock)
