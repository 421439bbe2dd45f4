"""Query trackers that link clips into tracks: CLIP-VIS top-K enhanced query matching
(:class:`TopKTracker`, our tiny and paper configs) and the official CaptionFormer tracker
(:class:`VoteTracker`).

Tracks are the N query slots of the first clip. Every later clip's N queries are assigned to
the slots by Hungarian matching against a memory bank of the last ``t_match`` clips' slot
embeddings: each memory entry gives a cost matrix (1 - cosine) and the total cost of its own
optimal assignment; the ``k_match`` entries with the lowest totals are averaged with recency
weights (1 / age, normalised; age 1 = previous clip) and a final Hungarian on the average
gives the assignment. A slot whose object is gone keeps older entries in the memory, so the
object is found again when it returns; the per-clip score decides whether a slot is output.

The official tracker differs in ways that change its tracks (see :class:`VoteTracker`): its
weights grow with recency (i + 1, oldest entry i = 0) where ours shrink (1 / age), and it
falls back to the single best entry while the memory holds fewer than K entries.

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
            perm = assign_slots(self.matching_cost(queries))
        self.memory.append(F.normalize(queries.float(), dim=-1)[perm])
        return perm


def assign_slots(cost: torch.Tensor) -> torch.Tensor:
    """Minimum-cost one-to-one assignment of a square (slots, new queries) cost matrix;
    returns ``perm`` with ``perm[slot]`` = the new query that continues the slot.

    Example:
        >>> assign_slots(torch.tensor([[1.0, 0.0], [0.0, 1.0]])).tolist()
        [1, 0]
    """
    slots, new = hungarian_match(cost)
    perm = torch.empty(cost.shape[0], dtype=torch.long)
    perm[slots] = new
    return perm


def _unit_rows(x: torch.Tensor) -> torch.Tensor:
    # The official division by the norm, not F.normalize (which clamps the norm): the last
    # bits of the costs decide ties between memory entries.
    return x / x.norm(dim=1)[:, None]


class VoteTracker:
    """The official CaptionFormer tracker (``match_from_vote_embds``), for one video.

    The memory holds the raw tracked embeddings of the last ``memory_len`` clips, oldest
    first. Each entry i gives a cost C_i = 1 - cosine (new queries x slots) and the total cost
    of its own optimal assignment. While the memory holds fewer than ``top_k`` entries the
    assignment of the entry with the lowest total is used; otherwise the ``top_k`` entries
    with the lowest totals are averaged with weights i + 1 (the newest weighs most, the weights
    are not normalised) and a final Hungarian on the average gives the assignment.
    ``memory_len=1`` is the official LV-VIS tracker (``match_from_embds``: Hungarian on
    1 - cosine against the previous tracked clip) for any ``top_k``.

    Example:
        >>> tr = VoteTracker(memory_len=1, top_k=1)
        >>> tr.step(torch.eye(3)).tolist()
        [0, 1, 2]
        >>> tr.step(torch.eye(3)[[2, 0, 1]]).tolist()    # the same objects, queries shuffled
        [1, 2, 0]
    """

    def __init__(self, *, memory_len: int, top_k: int) -> None:
        if memory_len < 1 or top_k < 1:
            raise ValueError("need memory_len >= 1 and top_k >= 1")
        self.top_k = top_k
        self.memory: deque[torch.Tensor] = deque(maxlen=memory_len)

    def step(self, embeds: torch.Tensor) -> torch.Tensor:
        """Assign this clip's query embeddings (Q, D) to the tracks; returns ``indices`` (Q,)
        with ``indices[track]`` = the query of this clip that continues the track."""
        indices = torch.arange(embeds.shape[0]) if not self.memory else self._match(embeds)
        self.memory.append(embeds[indices])
        return indices

    def _match(self, embeds: torch.Tensor) -> torch.Tensor:
        new = _unit_rows(embeds)
        costs, totals, assignments = [], [], []
        for entry in self.memory:
            # (new, slots) and on the CPU, as the official code builds it: the reductions below
            # see the same values in the same order.
            cost = (1 - torch.mm(new, _unit_rows(entry).T)).cpu()
            perm = assign_slots(cost.T)
            costs.append(cost)
            totals.append(cost[perm, torch.arange(len(perm))].sum())
            assignments.append(perm)
        totals = torch.stack(totals)
        if len(costs) < self.top_k:
            return assignments[int(torch.topk(totals, k=1, largest=False).indices)]
        chosen = torch.topk(totals, k=self.top_k, largest=False).indices
        weighted = torch.stack([cost * (i + 1) for i, cost in enumerate(costs)])
        return assign_slots(weighted[chosen].mean(0).T)
