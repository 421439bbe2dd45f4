"""ViCaS caption accuracy (CA, 0-5): an LLM judge compares a predicted video caption with
each ground-truth variant.

Scoring rules (ViCaS): every GT variant of a video (``caption_parsed_en``, its GPT-cleaned
form ``caption_parsed_en_gpt`` and the ``reworded_en_captions``) is judged against the
prediction; the answer is read with Python's ``float`` after stripping whitespace, a
non-numeric (or NaN) answer scores 0, and scores are clipped to [0, 5]; a video's score is the
mean over its variants, CA the mean over videos.

The judge is pluggable: anything with a ``model_id`` and ``generate(system, user) -> str``.
Two backends ship: :class:`TransformersJudge` (a local causal LM loaded from a folder) and
:class:`GeminiJudge` (``google-genai``). Both decode as ViCaS does by default
(:data:`VICAS_DECODING`: sampling at temperature 0.6 and top-p 0.9, seed 1, up to 8191 new
tokens, one sample per pair; ``vicas/evaluation/llama3/interface.py`` and ``caption_eval.py``
of Ali2500/ViCaS); :data:`GREEDY_DECODING` is the deterministic variant, labelled as such in
the model id. ViCaS seeds its sampler once per run, so its samples depend on the order of the
pairs; here each pair's sample is seeded from (seed, prompt), so that a cached answer is the
one a fresh run would draw. The paper's judge is Llama-3-70B-Instruct; any other model gives
numbers that are not comparable with the published ones.

Prompts are versioned (:data:`PROMPTS`); answers are cached persistently in the caption score
cache (``benchmark.captions.cache.PairScoreCache``) under a key made of the prompt version,
the judge's model id and decoding settings, the GT variant and the prediction, so re-running
an evaluation only asks the judge about new pairs.

Example:
    >>> class Always4:
    ...     model_id = "fake"
    ...     def generate(self, system, user):
    ...         return " 4 "
    >>> items = [CaptionItem(1, "a dog runs", ["a dog is running", "a running dog"])]
    >>> caption_accuracy(items, judge=Always4()).summary["CA"]
    4.0
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from tqdm import tqdm

from benchmark.captions.cache import PairScoreCache
from benchmark.errors import InputError, ToolMissingError
from benchmark.metrics.lgvis import read_vicas_files


@dataclass(frozen=True)
class JudgePrompt:
    """A versioned judge prompt: the system message and the user template ({gt}, {pred})."""

    version: str
    system: str
    user: str

    def render(self, gt: str, pred: str) -> tuple[str, str]:
        """The (system, user) messages for one pair."""
        # format() never re-reads the inserted captions, so braces in them are safe
        return self.system, self.user.format(gt=gt, pred=pred)


# The judge instructions of the ViCaS evaluation (Ali2500/ViCaS, vicas/evaluation), kept
# verbatim because the published CA depends on them. Never edit a released version: add one.
_VICAS_SYSTEM = (
    "\nYou are a language assistant helping the user to assign an accuracy score between two "
    "text passages. Generate only the required output without any preamble or header.\n")
_VICAS_USER = (
    "\nYou are given two captions for a certain video sequence. The first is the 'ground-truth' "
    "which accurately describes what is happening in the video. The second is a "
    "machine-generated 'predicted' caption. \n"
    "Assign a score of between 0 and 5 to the predicted caption. A score of 0 means the "
    "prediction is completely unrelated to the ground-truth and shares no common information. "
    "A score of 5 means that the content is conveyed with exactly the same information. Pay "
    "attention to the following guidelines when scoring:\n\n"
    "1) Focus on the underlying meaning rather than word-to-word similarity. If the overall "
    "meaning is similar, then a high score should be assigned even if the words used are "
    "different. Conversely, if the meaning differs then a low score should be assigned even if "
    "similar words are used.\n\n"
    "2) Do not penalize the prediction if it adds or omits minor details that are not relevant "
    "to the main event(s) of the video. \n"
    "    - Example: If the prediction mentions trees in the background but the ground-truth "
    "contains no information about the surroundings then don't penalize the prediction. \n"
    "    - If the ground-truth mentions fine details that are not essential to the main content "
    "then don't penalize the prediction for omitting this information.\n\n"
    "3) Do penalize any missing information that is important to the main events of the video. "
    "Also penalize any major events that are in the prediction but not in the ground-truth "
    "since these are probably false.\n\n"
    "4) Do penalize any information that contradicts the ground-truth\n"
    "    - Example: If the prediction mentions a person boarding a black truck but the "
    "ground-truth states mentions a person entering a white car then the prediction should be "
    "penalized for this incorrect information.\n\n"
    "5) Do penalize any information about the audio or sounds in the scene. Such information "
    "is hallucinated since the machine is not given any audio input and should be moderately "
    "penalized. \n\n"
    "The two captions are given below. Output ONLY the accuracy score and nothing else.\n\n"
    "GROUND-TRUTH: {gt}\n\n\n"
    "PREDICTED: {pred}\n")

PROMPTS: dict[str, JudgePrompt] = {
    "vicas-1": JudgePrompt("vicas-1", _VICAS_SYSTEM, _VICAS_USER),
}
DEFAULT_PROMPT = "vicas-1"


@dataclass(frozen=True)
class Decoding:
    """How a judge decodes: ``sample`` (else greedy), its temperature, top-p and seed, and the
    most new tokens (an answer is read with ``float()`` whole, so a longer one scores 0 either
    way)."""

    name: str
    sample: bool
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    max_new_tokens: int = 8191

    @property
    def id(self) -> str:
        """The settings in the judge's model id (and so in its cache key).

        Example:
            >>> VICAS_DECODING.id, GREEDY_DECODING.id
            ('vicas-t0.6-p0.9-seed1-max8191', 'greedy-max8')
        """
        if not self.sample:
            return f"{self.name}-max{self.max_new_tokens}"
        return f"{self.name}-t{self.temperature}-p{self.top_p}-seed{self.seed}-max{self.max_new_tokens}"

    def pair_seed(self, system: str, user: str) -> int:
        """The seed of one prompt's sample: the run's seed and the prompt, hashed."""
        digest = hashlib.sha256(f"{self.seed}|{system}|{user}".encode("utf-8", "surrogatepass")).digest()
        return int.from_bytes(digest[:8], "little") >> 1


# ViCaS: Llama.build(seed=1); predict_batch(temperature=0.6, top_p=0.9); max_gen_len = 8192 - 1.
VICAS_DECODING = Decoding("vicas", sample=True, temperature=0.6, top_p=0.9, seed=1, max_new_tokens=8191)
GREEDY_DECODING = Decoding("greedy", sample=False, max_new_tokens=8)
DECODINGS = {d.name: d for d in (VICAS_DECODING, GREEDY_DECODING)}


class Judge(Protocol):
    """What a judge backend provides."""

    model_id: str  # identifies model *and* decoding settings: part of the cache key

    def generate(self, system: str, user: str) -> str:
        """The model's raw answer to one (system, user) prompt."""


def parse_score(answer: str) -> float:
    """ViCaS's reading of a judge answer: float, else 0; NaN -> 0; clipped to [0, 5].

    Example:
        >>> parse_score(" 3.5\\n"), parse_score("Score: 4"), parse_score("7"), parse_score("-1")
        (3.5, 0.0, 5.0, 0.0)
    """
    try:
        score = float(answer.strip())
    except ValueError:
        return 0.0
    if math.isnan(score):
        return 0.0
    return min(5.0, max(0.0, score))


def _folder_fingerprint(path: Path) -> str:
    """Hash of the file names, sizes and mtimes of a model folder: a changed model, a new key."""
    digest = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file():
            st = p.stat()
            digest.update(f"{p.relative_to(path)}:{st.st_size}:{st.st_mtime_ns};".encode())
    return digest.hexdigest()[:16]


class TransformersJudge:
    """A local causal LM (``transformers``) loaded from a folder, decoding as ViCaS by default
    (pure top-p sampling: no top-k, whatever the model's generation config says).

    The chat template of the tokenizer is used when it has one (instruction-tuned models such
    as Llama-3-Instruct); otherwise system and user messages are joined by a blank line.

    Example:
        >>> judge = TransformersJudge(model_path="/models/llama3-70b-instruct")  # doctest: +SKIP
    """

    def __init__(self, *, model_path: str | os.PathLike[str], device: str = "cpu",
                 decoding: Decoding = VICAS_DECODING, torch_dtype: str | None = None) -> None:
        path = Path(model_path)
        if not path.is_dir():
            raise InputError("the judge model folder does not exist", source=str(path))
        try:
            import torch  # noqa: F401  (transformers needs it; say so clearly)
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise ToolMissingError(
                f"the transformers judge needs torch and transformers: {exc}") from exc
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModelForCausalLM.from_pretrained(
            path, local_files_only=True, torch_dtype=torch_dtype or "auto").to(device)
        self.model.eval()
        self.device = device
        self.decoding = decoding
        self.generate_kwargs: dict[str, Any] = {"max_new_tokens": decoding.max_new_tokens,
                                                "do_sample": decoding.sample}
        if decoding.sample:
            self.generate_kwargs.update(temperature=decoding.temperature, top_p=decoding.top_p, top_k=0)
        else:  # silence the sampling defaults a model's generation config may carry
            self.generate_kwargs.update(temperature=None, top_p=None, top_k=None)
        self.model_id = f"transformers:{path.resolve().name}:{_folder_fingerprint(path)}:{decoding.id}"

    def generate(self, system: str, user: str) -> str:
        """Answer one prompt; returns the decoded new tokens only."""
        import torch

        if getattr(self.tokenizer, "chat_template", None):
            ids = self.tokenizer.apply_chat_template(
                [{"role": "system", "content": system}, {"role": "user", "content": user}],
                add_generation_prompt=True, return_tensors="pt")
        else:
            ids = self.tokenizer(f"{system}\n\n{user}", return_tensors="pt").input_ids
        ids = ids.to(self.device)
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self.tokenizer.eos_token_id
        if self.decoding.sample:
            torch.manual_seed(self.decoding.pair_seed(system, user))
        with torch.no_grad():
            out = self.model.generate(ids, attention_mask=torch.ones_like(ids),
                                      pad_token_id=pad, **self.generate_kwargs)
        return self.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


class GeminiJudge:
    """Gemini through ``google-genai`` (imported on first use), decoding as ViCaS by default
    (temperature, top-p and the pair's seed sent with each request).

    The API key comes from ``api_key`` or the ``GEMINI_API_KEY`` / ``GOOGLE_API_KEY``
    environment variables, as the ``google-genai`` client reads them.

    Example:
        >>> judge = GeminiJudge(model="gemini-2.0-flash")                     # doctest: +SKIP
    """

    def __init__(self, *, model: str = "gemini-2.0-flash", api_key: str | None = None,
                 decoding: Decoding = VICAS_DECODING) -> None:
        try:
            from google import genai
            from google.genai import types
        except ImportError as exc:
            raise ToolMissingError(f"the Gemini judge needs google-genai: {exc}") from exc
        self._client = genai.Client(api_key=api_key) if api_key else genai.Client()
        self._types = types
        self.model = model
        self.decoding = decoding
        self.model_id = f"gemini:{model}:{decoding.id}"

    def generate(self, system: str, user: str) -> str:
        """Answer one prompt (the text of the first candidate, "" when there is none)."""
        d = self.decoding
        sampling = (dict(temperature=d.temperature, top_p=d.top_p, seed=d.pair_seed(system, user) % 2**31)
                    if d.sample else dict(temperature=0.0))
        config = self._types.GenerateContentConfig(
            system_instruction=system, max_output_tokens=d.max_new_tokens, **sampling)
        response = self._client.models.generate_content(model=self.model, contents=user,
                                                        config=config)
        return response.text or ""


@dataclass(frozen=True)
class CaptionItem:
    """One video: its id, the predicted caption and the GT variants it is judged against."""

    video_id: int
    prediction: str
    references: Sequence[str]


@dataclass
class CaptionAccuracyResult:
    """``summary`` (CA, videos, pairs, judged now) and ``per_video`` scores."""

    summary: dict[str, float]
    per_video: pd.DataFrame
    pair_scores: dict[tuple[str, str], float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, float]:
        """The summary as a flat dict (JSON-ready)."""
        return dict(self.summary)


def caption_accuracy(items: Sequence[CaptionItem], *, judge: Judge,
                     prompt_version: str = DEFAULT_PROMPT, cache: PairScoreCache | None = None,
                     progress: bool = False) -> CaptionAccuracyResult:
    """ViCaS caption accuracy of ``items`` with ``judge``; ``cache`` keeps answers across runs.

    Each distinct (GT variant, prediction) pair is judged once; cached pairs are not asked
    again. Scores of finished pairs are stored as they come, so an interrupted run loses
    nothing already judged.

    Example:
        >>> caption_accuracy(load_vicas_caption_items("gt/", "pred/"),
        ...                  judge=TransformersJudge(model_path="llama3"))  # doctest: +SKIP
    """
    if prompt_version not in PROMPTS:
        raise ValueError(f"unknown prompt version {prompt_version!r}; known: {sorted(PROMPTS)}")
    prompt = PROMPTS[prompt_version]
    metric_id = f"judge|{prompt.version}|{judge.model_id}"
    pairs = list(dict.fromkeys((ref, it.prediction) for it in items for ref in it.references))
    scores = cache.get_many(metric_id, pairs) if cache is not None else {}
    todo = [p for p in pairs if p not in scores]
    for ref, pred in tqdm(todo, desc="judge", unit="pair", disable=not progress):
        score = parse_score(judge.generate(*prompt.render(ref, pred)))
        scores[(ref, pred)] = score
        if cache is not None:
            cache.put_many(metric_id, [(ref, pred)], [score])
    rows = []
    for it in items:
        if not it.references:
            raise InputError("a video needs at least one GT caption", record=it.video_id,
                             field="references")
        per_ref = [scores[(ref, it.prediction)] for ref in it.references]
        rows.append({"video_id": it.video_id, "variants": len(per_ref),
                     "CA": float(np.mean(per_ref))})
    per_video = pd.DataFrame(rows, columns=["video_id", "variants", "CA"])
    summary = {"CA": float(per_video["CA"].mean()) if len(per_video) else math.nan,
               "videos": float(len(per_video)), "pairs": float(len(pairs)),
               "judged_now": float(len(todo))}
    return CaptionAccuracyResult(summary, per_video, scores)


def load_vicas_caption_items(gt: Any, pred: Any) -> list[CaptionItem]:
    """Caption items from ViCaS files: GT variants ``caption_parsed_en``,
    ``caption_parsed_en_gpt`` and ``reworded_en_captions``; prediction ``pred_caption``.

    Example:
        >>> load_vicas_caption_items(
        ...     [{"video_id": 1, "caption_parsed_en": "a", "caption_parsed_en_gpt": "b",
        ...       "reworded_en_captions": ["c"]}],
        ...     [{"video_id": 1, "pred_caption": "d"}])[0].references
        ['a', 'b', 'c']
    """
    gts, preds = read_vicas_files(gt), read_vicas_files(pred)
    items = []
    for vid in sorted(gts):
        gt_name, content = gts[vid]
        if vid not in preds:
            raise InputError(f"no prediction for video {vid}", source=gt_name, field="video_id")
        refs = []
        for name in ("caption_parsed_en", "caption_parsed_en_gpt"):
            if not isinstance(content.get(name), str):
                raise InputError("missing or not a string", source=gt_name, field=name)
            refs.append(content[name])
        reworded = content.get("reworded_en_captions", [])
        if not isinstance(reworded, list) or not all(isinstance(r, str) for r in reworded):
            raise InputError("must be a list of strings", source=gt_name,
                             field="reworded_en_captions")
        pred_name, pred_content = preds[vid]
        caption = pred_content.get("pred_caption")
        if not isinstance(caption, str):
            raise InputError("missing or not a string", source=pred_name, field="pred_caption")
        items.append(CaptionItem(vid, caption, refs + reworded))
    return items
