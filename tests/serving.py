"""Start a real ``localmem serve`` subprocess on 127.0.0.1 and a free port, for the server tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
# Loading torch and the embedder takes ~10 s on an idle 2-core machine, minutes on a crowded one.
START_TIMEOUT_S = 300.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a child ``python -m localmem``: this checkout first on the path, offline."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCALMEM_SERVER", "LOCALMEM_API_KEY"))}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.update(extra)
    return env


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def launch(db: Path, *, port: int | None = None, args: Sequence[str] = (), env: dict[str, str] | None = None,
           wait: bool = True) -> Served:
    port = port or free_port()
    log = db.with_name(f"{db.name}.serve-{port}.log")
    out = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "localmem", "serve", "--db", str(db), "--port", str(port), *args],
        stdout=out, stderr=subprocess.STDOUT, env=env or cli_env(), cwd=db.parent)
    out.close()
    served = Served(process, f"http://127.0.0.1:{port}", log)
    if wait:
        wait_ready(served)
    return served


def wait_ready(served: Served) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            raise RuntimeError(f"localmem serve exited {served.process.returncode}:\n{served.output()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(served.url + "/health", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    served.process.kill()
    served.process.wait()
    raise RuntimeError(f"localmem serve did not start in {START_TIMEOUT_S}s:\n{served.output()}")


def stop(served: Served, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
    if served.process.poll() is None:
        served.process.send_signal(sig)
    try:
        return served.process.wait(timeout)
    except subprocess.TimeoutExpired:
        served.process.kill()
        served.process.wait()
        raise


@contextlib.contextmanager
def serving(db: Path, **kwargs: object) -> Iterator[Served]:
    served = launch(db, **kwargs)  # type: ignore[arg-type]
    try:
        yield served
    finally:
        stop(served)
