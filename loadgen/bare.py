"""The fixed question both stand-ins for the product send: the bare Channels consumer
(``loadgen.baseline``) and the ceiling (``loadgen.ceiling``). No Django here: the ceiling runs
without ``django.setup()``."""

from __future__ import annotations

import json

from polls import kinds


def question(question_id: int, kind: str) -> dict:
    """A question of ``kind`` shaped like the product's ``state.question``, its kind's block
    that of a sample question (``polls.kinds``: no database)."""
    options = [{"id": question_id * 10 + n, "label": f"Option {n}"} for n in range(1, 5)]
    known = kinds.find(kind)
    return {
        "id": question_id,
        "kind": kind,
        "prompt": f"Baseline question {question_id}",
        "options": options if known is not None and known.has_options else [],
        "open": True,
        "state": "open",
        "show_results": False,
        "revealed": False,
        **kinds.sample_blocks(kind),
        "figures": [],
        "figures_count": 0,
        "position": 1,
        "count": 2,
    }


def state_text(code: str, question_id: int, kind: str, answer=None) -> str:
    return json.dumps(
        {
            "type": "state",
            "event": {"code": code, "title": "Baseline"},
            "question": question(question_id, kind),
            "answer": answer,
        },
        separators=(",", ":"),
    )
