"""Which compute device to use: CUDA, then MPS, then CPU, unless the user names one."""

from __future__ import annotations

from localmem.errors import ConfigError

_KNOWN = ("cpu", "cuda", "mps")


def resolve_device(requested: str) -> str:
    """Map ``"auto"`` to the best available device; check an explicit one exists."""
    import torch  # heavy; only the embedder path needs it

    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    base = requested.split(":", 1)[0]
    if base not in _KNOWN:
        raise ConfigError(f"embedder.config.device {requested!r} is unknown; use 'auto', 'cpu', 'cuda[:N]' or 'mps'")
    if base == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"embedder.config.device is {requested!r} but torch sees no CUDA device; use 'auto'")
    if base == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("embedder.config.device is 'mps' but MPS is not available; use 'auto'")
    return requested
