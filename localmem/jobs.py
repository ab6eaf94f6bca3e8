"""What add() is asked to do, and the part of it left to the background (background.py).

A ``Job`` is one add(infer=True) call whose facts are still to be drawn: its request
and the episodes it stored, kept as JSON in the history database's queue until the
transaction that writes its facts removes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from localmem.records import Message, Scope


@dataclass(frozen=True)
class AddRequest:
    """One add() call, checked."""

    messages: list[Message]
    scope: Scope
    metadata: dict[str, Any]
    infer: bool
    moment: datetime  # when the messages were said (aware UTC)
    prompt: str | None = None

    @property
    def epoch(self) -> int:
        return int(self.moment.timestamp())


@dataclass(frozen=True)
class Job:
    """One add() call's extraction: its request, and the episodes it stored for its messages."""

    messages: tuple[Message, ...]
    scope: Scope
    moment: datetime
    metadata: dict[str, Any] = field(default_factory=dict)
    prompt: str | None = None
    # Per episode written (or found again) for the messages: (id, text hash, positions of its messages).
    # The hash tells an episode changed since (update()) from the one stored: its facts are not drawn.
    episodes: tuple[tuple[str, str, tuple[int, ...]], ...] = ()

    def to_json(self) -> str:
        return json.dumps({
            "messages": [{"role": m.role, "content": m.content, **({"name": m.name} if m.name else {})}
                         for m in self.messages],
            "scope": self.scope.as_dict(), "moment": self.moment.isoformat(), "metadata": self.metadata,
            "prompt": self.prompt, "episodes": [[i, h, list(at)] for i, h, at in self.episodes],
        }, ensure_ascii=False)

    def request(self) -> AddRequest:
        return AddRequest(messages=list(self.messages), scope=self.scope, metadata=dict(self.metadata), infer=True,
                          moment=self.moment, prompt=self.prompt)

    @classmethod
    def from_json(cls, text: str) -> Job:
        body = json.loads(text)
        return cls(messages=tuple(Message(m["role"], m["content"], m.get("name")) for m in body["messages"]),
                   scope=Scope(**body["scope"]), moment=datetime.fromisoformat(body["moment"]),
                   metadata=dict(body.get("metadata") or {}), prompt=body.get("prompt"),
                   episodes=tuple((str(i), str(h), tuple(int(p) for p in at)) for i, h, at in body["episodes"]))


