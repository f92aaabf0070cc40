"""What the question-scorer tests share: the toy catalogue of three attributes with its
labelled questions, and the mean probability given to the answers."""

from __future__ import annotations

import numpy as np

from align.qa_scorer import Candidate, Question


def toy_questions() -> list[Question]:
    """12 questions about colour / season / brand of one toy product (4 each) and one
    question none of them answers (NIL), in that order."""
    cands = [
        Candidate("colour", "black"),
        Candidate("season", "summer"),
        Candidate("brand", "acme"),
    ]
    texts = {0: ["what colour is it", "which colour", "colour please", "is it black"],
             1: ["which season", "season for it", "summer or winter", "what season"],
             2: ["who makes it", "which brand", "brand name", "made by acme"]}  # fmt: skip
    out = [Question(t, cands, [i]) for i, ts in texts.items() for t in ts]
    return out + [Question("how much does shipping cost", cands, [])]


def gold(probs, questions) -> float:
    """Mean probability the rows ``probs`` ``[C_i]`` give to each question's answers."""
    return float(np.mean([p[q.labels].sum() for p, q in zip(probs, questions, strict=True)]))
