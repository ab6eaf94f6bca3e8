"""The distribution's name and the install hints that name it: one place, so no message drifts.

``localmem`` on PyPI is another project; ours installs as ``localmem-offline`` (import name
``localmem``). That name is not published on any index we control, so a hint never sends a user
to an index: it names the checkout or a built wheel / bundle, where the name resolves to us.
"""

from __future__ import annotations

DIST_NAME = "localmem-offline"


def extra_hint(extra: str) -> str:
    """How to add an optional extra, e.g. ``server``: from a checkout, or from our wheels."""
    return (f"pip install -e '.[{extra}]' in the localmem checkout, or "
            f"pip install --no-index --find-links WHEELS '{DIST_NAME}[{extra}]' from a built wheel or bundle")
