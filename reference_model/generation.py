"""Beam search for a causal language model prompted with embeddings, as the official
CaptionFormer evaluation ran it: ``OPTForCausalLM.generate(inputs_embeds=..., num_beams=5,
max_length=30, min_length=1, eos_token_id=50118)`` under transformers 4.28.1.

Later transformers releases changed what that call returns (no leading BOS, ``max_length``
counted differently, another finished-beam length), so the official token ids need the 4.28
rules, written out here:

* the returned sequence starts with the BOS id (4.28 made it the ``input_ids`` of an
  ``inputs_embeds`` call), and ``max_length`` counts that BOS: at most ``max_length - 1``
  generated tokens; before ``min_length`` (BOS included) the end token is forbidden;
* the prompt embeddings are fed once, to ``num_beams`` copies (with the attention cache);
  each later step feeds the tokens chosen last;
* each step ranks ``log_softmax`` + beam score over all beams and keeps the top
  ``2 * num_beams`` candidates (``topk``, sorted); an end token ranked in the first
  ``num_beams`` closes its beam as a finished hypothesis scored ``sum log p / len **
  length_penalty``, where ``len`` counts the BOS and not the end token; the first
  ``num_beams`` other candidates continue;
* the search is done when ``num_beams`` hypotheses are finished and the worst of them is at
  least the best candidate score divided by ``(len + 1) ** length_penalty``; when it stops at
  ``max_length`` instead, the running beams join the hypotheses. The best hypothesis is
  returned, followed by the end token when it is shorter than ``max_length``.

One deliberate difference: the log-probabilities are summed in float64, not float32. With
repetitive captions two beams' float32 sums can tie to the last bit, and the winner then
depends on the CPU's kernels: on the CPU where this was checked, transformers 4.28.1 itself
returns another caption than the official golden run for one of its 100 captions. float64
ranks such beams by their exact order; it matches all 100 golden captions, and transformers
4.28.1 on 150 random small models (with end tokens, minimum lengths, length penalties).

Only the forward pass comes from transformers (any model taking ``inputs_embeds``,
``input_ids``, ``attention_mask``, ``cache``, ``use_cache`` and ``logits_to_keep``).

Example:
    >>> import torch
    >>> from transformers import OPTConfig, OPTForCausalLM
    >>> _ = torch.manual_seed(0)
    >>> lm = OPTForCausalLM(OPTConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, ffn_dim=16,
    ...                                num_attention_heads=2, word_embed_proj_dim=8)).eval()
    >>> ids = BeamSearch(max_length=6, eos_token_id=7)(lm, torch.randn(1, 3, 8))
    >>> ids.shape[0], ids[0, 0].item(), ids.shape[1] <= 6
    (1, 2, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


class _FinishedHypotheses:
    """The ``num_beams`` best finished sequences, kept and replaced as transformers 4.28 does."""

    def __init__(self, *, num_beams: int, length_penalty: float) -> None:
        self.num_beams = num_beams
        self.length_penalty = length_penalty
        self.entries: list[tuple[float, torch.Tensor]] = []
        self.worst = 1e9

    def add(self, tokens: torch.Tensor, sum_logprobs: float) -> None:
        score = sum_logprobs / len(tokens) ** self.length_penalty
        if len(self.entries) < self.num_beams or score > self.worst:
            self.entries.append((score, tokens))
            if len(self.entries) > self.num_beams:
                # Drop the worst (the earliest one among equal scores); the next worst becomes the bar.
                order = sorted((s, i) for i, (s, _) in enumerate(self.entries))
                del self.entries[order[0][1]]
                self.worst = order[1][0]
            else:
                self.worst = min(score, self.worst)

    def is_done(self, best_running_score: float, length: int) -> bool:
        if len(self.entries) < self.num_beams:
            return False
        return self.worst >= best_running_score / length ** self.length_penalty

    def best(self) -> torch.Tensor:
        # A stable sort and the last element: among equal scores the latest added wins.
        return sorted(self.entries, key=lambda entry: entry[0])[-1][1]


@dataclass(frozen=True)
class BeamSearch:
    """Beam-search settings; calling it generates one sequence from prompt embeddings."""

    num_beams: int = 5
    max_length: int = 30
    min_length: int = 1
    length_penalty: float = 1.0
    bos_token_id: int = 2
    eos_token_id: int = 50118

    @torch.no_grad()
    def __call__(self, lm: nn.Module, inputs_embeds: torch.Tensor) -> torch.Tensor:
        """Token ids (1, L) for ``inputs_embeds`` (1, P, d): BOS, generated tokens, maybe EOS."""
        if inputs_embeds.shape[0] != 1:
            raise ValueError("beam search runs one prompt at a time, as the official code calls it")
        k = self.num_beams
        device = inputs_embeds.device
        tokens = torch.full((k, 1), self.bos_token_id, dtype=torch.long, device=device)
        attention = torch.ones((k, inputs_embeds.shape[1]), dtype=torch.long, device=device)
        # Every beam starts from the same prompt; only beam 0 may expand at the first step.
        beam_scores = torch.zeros(k, dtype=torch.float64, device=device)
        beam_scores[1:] = -1e9
        finished = _FinishedHypotheses(num_beams=k, length_penalty=self.length_penalty)
        out = lm(inputs_embeds=inputs_embeds.expand(k, -1, -1), attention_mask=attention,
                 use_cache=True, logits_to_keep=1)
        done = False
        while True:
            length = tokens.shape[1]
            # float64: see the module docstring (ties of float32 sums).
            logprobs = F.log_softmax(out.logits[:, -1, :].double(), dim=-1)
            if length < self.min_length:
                logprobs[:, self.eos_token_id] = -float("inf")
            vocab = logprobs.shape[-1]
            scores = (logprobs + beam_scores[:, None]).view(1, -1)
            top_scores, top_ids = torch.topk(scores, 2 * k, dim=1, largest=True, sorted=True)
            keep_scores, keep_tokens, keep_beams = [], [], []
            for rank, (score, flat) in enumerate(zip(top_scores[0].tolist(), top_ids[0].tolist())):
                beam, token = divmod(flat, vocab)
                if token == self.eos_token_id:
                    if rank < k:
                        finished.add(tokens[beam].clone(), score)
                    continue
                keep_scores.append(score)
                keep_tokens.append(token)
                keep_beams.append(beam)
                if len(keep_tokens) == k:
                    break
            done = finished.is_done(top_scores.max().item(), length + 1)
            beams = torch.tensor(keep_beams, device=device)
            beam_scores = top_scores.new_tensor(keep_scores)
            tokens = torch.cat([tokens[beams], torch.tensor(keep_tokens, device=device)[:, None]], dim=1)
            attention = torch.cat([attention, attention.new_ones((k, 1))], dim=1)
            if done or tokens.shape[1] >= self.max_length:
                break
            cache = out.cache
            cache.reorder_cache(beams)
            out = lm(input_ids=tokens[:, -1:], attention_mask=attention, cache=cache, use_cache=True,
                     logits_to_keep=1)
        if not done:
            for beam in range(k):
                finished.add(tokens[beam], beam_scores[beam].item())
        best = finished.best()
        if len(best) < self.max_length:
            best = torch.cat([best, best.new_tensor([self.eos_token_id])])
        return best[None]
