"""``harness make-tiny-model`` and ``harness serve``: build the tiny demo model, serve a backend over HTTP."""

from __future__ import annotations

import argparse

from harness.cli.command import CliError, Command, SubParsers


def _add_make_tiny_model(sub: SubParsers) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "make-tiny-model",
        help="build the tiny random-weight Qwen2.5-VL (offline, seeded) into DIR",
        description="Build a tiny random-weight Qwen2.5-VL (real classes, ~0.3M parameters) with "
        "save_pretrained; use it as --model hf:DIR. Its replies are noise: a pipeline check, not a model.",
    )
    p.add_argument("dir", metavar="DIR", help="output folder (must not exist or be empty)")
    p.add_argument("--seed", type=int, default=0, help="weight seed (same seed, same files)")
    p.add_argument(
        "--size",
        choices=("tiny", "demo"),
        default="tiny",
        help="tiny (default, ~0.3M parameters) or demo (~3.5M, hidden 256, 4 layers, a compact "
        "2048-token tokenizer: large enough that SFT on a CPU teaches it valid tool calls)",
    )
    return p


def _add_serve(sub: SubParsers) -> argparse.ArgumentParser:
    from harness.interop.serve import ServeOptions

    serve_defaults = ServeOptions()
    p = sub.add_parser(
        "serve",
        help="serve a model backend as an OpenAI-compatible endpoint (127.0.0.1 by default)",
        description="POST /v1/chat/completions and GET /v1/models on HOST:PORT (uvicorn + Starlette). "
        "Limits and refusals: docs/reliability.md, section harness serve.",
    )
    p.add_argument("--model", required=True, help="PREFIX:NAME, e.g. hf:PATH_OR_HUB_ID or hf:@tiny")
    p.add_argument("--model_args", default="", help="key=value,... passed to the backend")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: local only)")
    p.add_argument("--port", type=int, default=8000, help="port (0: any free port, printed at start)")
    p.add_argument("--max_batch", type=int, default=8, help="requests generated together at most")
    p.add_argument(
        "--api-key", "--api_key", dest="api_key", metavar="KEY", help="require Authorization: Bearer KEY"
    )
    p.add_argument("--api_key_env", metavar="VAR", help="like --api-key, the key read from variable VAR")
    p.add_argument(
        "--max_request_pixels",
        type=int,
        default=serve_defaults.max_request_pixels,
        help="pixels of all images of one request together, read from headers before decoding "
        "(default %(default)s: 16 images of 5120*28*28)",
    )
    p.add_argument(
        "--max_body_mb", type=int, default=serve_defaults.max_body_bytes >> 20, help="request body limit"
    )
    p.add_argument(
        "--read_timeout", type=float, default=serve_defaults.read_timeout, help="seconds (head, body, idle)"
    )
    p.add_argument("--backlog", type=int, default=serve_defaults.backlog, help="listen queue length")
    p.add_argument("--verbose", action="store_true", help="log every request line")
    return p


def _cmd_make_tiny_model(args: argparse.Namespace) -> int:
    from harness.backends.options import MissingExtra
    from harness.backends.tiny import build_tiny_model

    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        raise MissingExtra(
            "make-tiny-model needs torch and transformers: pip install 'pixel-harness[hf]'"
        ) from None
    try:
        out = build_tiny_model(args.dir, seed=args.seed, size=args.size)
    except FileExistsError as exc:
        raise CliError(str(exc)) from None
    print(f"wrote a {args.size} random-weight Qwen2.5-VL to {out} (use --model hf:{out})")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    import os

    from harness.backends import parse_model_args
    from harness.interop.serve import ServeOptions
    from harness.interop.server import serve

    api_key = args.api_key
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            raise CliError(f"--api_key_env: variable {args.api_key_env} is not set or empty")
    try:
        options = ServeOptions(
            host=args.host,
            port=args.port,
            max_batch=args.max_batch,
            api_key=api_key,
            max_request_pixels=args.max_request_pixels,
            max_body_bytes=args.max_body_mb << 20,
            read_timeout=args.read_timeout,
            backlog=args.backlog,
            verbose=args.verbose,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    serve(args.model, parse_model_args(args.model_args), options)
    return 0


COMMANDS = (
    Command("make-tiny-model", _add_make_tiny_model, _cmd_make_tiny_model),
    Command("serve", _add_serve, _cmd_serve),
)
