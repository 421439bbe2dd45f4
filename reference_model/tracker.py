"""Top-K enhanced query matching (CLIP-VIS), used by MaskCaptioner to link clips into tracks.

Tracks are the N query slots of the first clip. Every later clip's N queries are assigned to
the slots by Hungarian matching against a memory bank of the last ``t_match`` clips' slot
embeddings: each memory entry gives a cost matrix (1 - cosine) and the total cost of its own
optimal assignment; the ``k_match`` entries with the lowest totals are averaged with recency
weights (1 / age, normalised; age 1 = previous clip) and a final Hungarian on the average
gives the assignment. A slot whose object is gone keeps older entries in the memory, so the
object is found again when it returns; the per-clip score decides whether a slot is output.

Example:
    >>> import torch
    >>> tr = TopKTracker(t_match=2, k_match=1)
    >>> tr.step(torch.eye(3)).tolist()
    [0, 1, 2]
    >>> tr.step(torch.eye(3)[[2, 0, 1]]).tolist()    # the same objects, queries shuffled
    [1, 2, 0]
"""

from __future__ import annotations

from collections import deque

import torch
from torch.nn import functional as F

from reference_model.matcher import hungarian_match


class TopKTracker:
    """Online slot assignment for one video; call :meth:`step` once per clip."""

    def __init__(self, *, t_match: int, k_match: int) -> None:
        if t_match < 1 or not 1 <= k_match <= t_match:
            raise ValueError("need t_match >= 1 and 1 <= k_match <= t_match")
        self.k_match = k_match
        self.memory: deque[torch.Tensor] = deque(maxlen=t_match)

    def matching_cost(self, queries: torch.Tensor) -> torch.Tensor:
        """(slots, new queries) cost that the final Hungarian minimises."""
        q = F.normalize(queries.float(), dim=-1)
        entries = list(self.memory)[::-1]  # newest first: index i has age i + 1
        costs = [1 - entry @ q.T for entry in entries]
        totals = []
        for cost in costs:
            rows, cols = hungarian_match(cost)
            totals.append(float(cost[rows, cols].sum()))
        # Lowest total first; among equal totals the more recent entry wins (stable sort).
        chosen = sorted(range(len(costs)), key=lambda i: totals[i])[: self.k_match]
        weights = torch.tensor([1.0 / (i + 1) for i in chosen])
        weights = weights / weights.sum()
        return sum(w * costs[i] for w, i in zip(weights, chosen))

    def step(self, queries: torch.Tensor) -> torch.Tensor:
        """Assign this clip's queries (N, D) to the slots; returns ``perm`` with
        ``perm[slot]`` = index of the query that continues that slot's track."""
        if not self.memory:
            perm = torch.arange(queries.shape[0])
        else:
            slots, new = hungarian_match(self.matching_cost(queries))
            perm = torch.empty(queries.shape[0], dtype=torch.long)
            perm[slots] = new
        self.memory.append(F.normalize(queries.float(), dim=-1)[perm])
        return perm
