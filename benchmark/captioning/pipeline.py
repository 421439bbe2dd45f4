"""Caption every object of a dataset with a VLM: resumable, rate-limited, retried, accounted.

Per object: render the visual prompt, build the request (system prompt, optional few-shot
turns, user prompt), wait for the rate limiter, call the client (retrying 429 / 5xx / network
errors with exponential backoff and full jitter), validate the answer, and append the outcome
to the JSONL cache at once. Objects whose key already has an answer in the cache are never
sent again (invalid answers only with ``retry_invalid=True``; API failures are retried on the
next run, they cost nothing). Every object ends up either captioned or in ``failures``.

Example:
    >>> pipeline = CaptionPipeline(client=GeminiClient(), cache_path="cache.jsonl")  # doctest: +SKIP
    >>> run = pipeline.run(targets)                                                   # doctest: +SKIP
    >>> run.captions["4711"], run.usage.cost_usd                                      # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence, TypeVar

from tqdm import tqdm

from benchmark.captioning.cache import CaptionCache, cache_key
from benchmark.captioning.client import DEFAULT_MODEL, CaptionRequest, Turn, VLMClient, VLMError
from benchmark.captioning.costs import DEFAULT_PRICES, Price, Usage, call_cost
from benchmark.captioning.prompts import PROMPT_VERSION, SYSTEM_PROMPTS, VISUAL_PROMPTS, VOCAP_PROMPT, user_prompt
from benchmark.captioning.sources import Target, read_json
from benchmark.captioning.validate import CaptionCheck, check_caption, parse_vocap_answer
from benchmark.captioning.visual import area_fraction, render_views
from benchmark.errors import InputError

T = TypeVar("T")


class RateLimiter:
    """Spaces calls at least ``60 / requests_per_minute`` seconds apart, across threads.

    Example:
        >>> limiter = RateLimiter(requests_per_minute=600)
        >>> limiter.acquire()  # returns at once the first time
    """

    def __init__(
        self,
        requests_per_minute: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if requests_per_minute <= 0:
            raise InputError("requests per minute must be positive", field="requests_per_minute")
        self.interval = 60.0 / requests_per_minute
        self._clock = clock
        self._sleep = sleep
        self._next = -float("inf")
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Block until this caller's slot."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            self._sleep(slot - now)


def call_with_retry(
    fn: Callable[[], T],
    *,
    max_retries: int,
    backoff_base_s: float,
    backoff_max_s: float,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> tuple[T, int]:
    """Run ``fn``; on a retryable ``VLMError`` wait ``uniform(0, min(max, base * 2**k))``
    (at least the server's Retry-After) and try again, up to ``max_retries`` times.
    Returns the result and the number of attempts; re-raises the last error."""
    rng = rng or random.Random()
    for attempt in range(max_retries + 1):
        try:
            return fn(), attempt + 1
        except VLMError as exc:
            if not exc.retryable or attempt == max_retries:
                exc.attempts = attempt + 1
                raise
            # Full jitter: concurrent workers hit by the same 429 do not retry in lockstep.
            delay = rng.uniform(0.0, min(backoff_max_s, backoff_base_s * 2**attempt))
            sleep(max(delay, exc.retry_after_s or 0.0))
    raise AssertionError("unreachable")  # pragma: no cover


def load_few_shot(path: str | Path) -> tuple[Turn, ...]:
    """Few-shot turns from a JSON list of ``{"images": [paths], "text": user prompt,
    "caption": expected answer}`` (image paths relative to the JSON file)."""
    path = Path(path)
    examples = read_json(path)
    if not isinstance(examples, list):
        raise InputError("expected a list of examples", source=str(path))
    turns = []
    for i, ex in enumerate(examples):
        for name in ("text", "caption"):
            if not isinstance(ex.get(name), str) or not ex[name].strip():
                raise InputError("must be a non-empty string", source=str(path), record=i, field=name)
        images = []
        for image in ex.get("images", []):
            try:
                images.append((path.parent / image).read_bytes())
            except OSError as exc:
                raise InputError(f"cannot read image {image!r}", source=str(path), record=i, field="images") from exc
        turns.append(Turn(role="user", text=ex["text"], images=tuple(images)))
        turns.append(Turn(role="model", text=ex["caption"]))
    return tuple(turns)


@dataclass
class CaptionRun:
    """Outcome of ``CaptionPipeline.run``.

    ``captions``: annotation id -> accepted caption. ``failures``: one dict per object without
    a caption (``annotation_id``, ``status`` = ``invalid`` | ``error``, ``reason``, ``answer``).
    ``usage``: calls billed in this run; ``usage_total``: every billed call in the cache for
    these objects (all runs). ``cached``: objects answered from the cache.
    """

    captions: dict[str, str] = field(default_factory=dict)
    failures: list[dict] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    usage_total: Usage = field(default_factory=Usage)
    cached: int = 0
    requested: int = 0
    torn_cache_lines: int = 0

    def summary(self) -> dict:
        """JSON-ready summary."""
        return {
            "captioned": len(self.captions),
            "failed": len(self.failures),
            "from_cache": self.cached,
            "requested_this_run": self.requested,
            "torn_cache_lines": self.torn_cache_lines,
            "usage_this_run": self.usage.to_dict(),
            "usage_all_runs": self.usage_total.to_dict(),
            "failures": self.failures,
        }


class CaptionPipeline:
    """Builds requests and runs them; see the module docstring.

    ``style``: ``"boxes"`` (MaskCaptioner) or ``"contour"`` (VoCap). ``few_shot``: turns from
    ``load_few_shot``. ``sleep``/``clock``/``rng`` exist so tests run without waiting.
    """

    def __init__(
        self,
        *,
        client: VLMClient | None,
        cache_path: str | Path,
        model: str = DEFAULT_MODEL,
        style: str = "boxes",
        num_frames: int = 4,
        max_side: int = 768,
        few_shot: Sequence[Turn] = (),
        temperature: float | None = 0.2,
        max_output_tokens: int = 128,
        concurrency: int = 4,
        requests_per_minute: float = 60.0,
        max_retries: int = 5,
        backoff_base_s: float = 2.0,
        backoff_max_s: float = 60.0,
        prices: Mapping[str, Price] = DEFAULT_PRICES,
        retry_invalid: bool = False,
        progress: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if style not in VISUAL_PROMPTS:
            raise InputError(f"unknown visual prompt {style!r}; expected one of {VISUAL_PROMPTS}", field="style")
        if concurrency < 1 or num_frames < 1 or max_retries < 0:
            raise InputError("concurrency and num_frames must be >= 1, max_retries >= 0")
        self.client = client
        self.cache = CaptionCache(cache_path)
        self.model = model
        self.style = style
        self.num_frames = num_frames
        self.max_side = max_side
        self.few_shot = tuple(few_shot)
        self.temperature = temperature
        self.max_output_tokens = max_output_tokens
        self.concurrency = concurrency
        self.limiter = RateLimiter(requests_per_minute, clock=clock, sleep=sleep)
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.prices = prices
        self.retry_invalid = retry_invalid
        self.progress = progress
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self.prompt_id = self._prompt_id()

    def _prompt_id(self) -> str:
        # Everything that changes the request except the object itself; the few-shot turns
        # enter through a hash so that editing them invalidates their cached answers.
        parts = [PROMPT_VERSION, self.style, f"f{self.num_frames}", f"s{self.max_side}", f"t{self.temperature}"]
        if self.few_shot:
            digest = hashlib.sha256()
            for turn in self.few_shot:
                digest.update(turn.role.encode() + b"\0" + turn.text.encode() + b"\0")
                for image in turn.images:
                    digest.update(hashlib.sha256(image).digest())
            parts.append("fs-" + digest.hexdigest()[:10])
        return "/".join(parts)

    def key(self, target: Target) -> str:
        """Cache key of one object."""
        return cache_key(target.dataset, target.annotation_id, self.prompt_id, self.model)

    def build_request(self, target: Target) -> CaptionRequest:
        """The exact request for one object (reads and draws its frames)."""
        views = render_views(target, style=self.style, num_frames=self.num_frames, max_side=self.max_side)
        text = VOCAP_PROMPT if self.style == "vocap" else user_prompt(
            category=target.category,
            boxes_xyxy=[v.box_xyxy for v in views],
            area_fraction=area_fraction(target),
            others=target.other_categories,
            image_size=views[0].size,
        )
        turn = Turn(role="user", text=text, images=tuple(v.png for v in views))
        return CaptionRequest(
            model=self.model,
            system_prompt=SYSTEM_PROMPTS[self.style],
            turns=self.few_shot + (turn,),
            temperature=self.temperature,
            max_output_tokens=self.max_output_tokens,
        )

    def dry_run(self, targets: Sequence[Target], out_dir: str | Path) -> list[Path]:
        """Write, per object, the exact request for review: ``request.json`` (texts, image
        hashes), ``prompt.txt`` (system + user text) and the frames as PNG. No API call."""
        out_dir = Path(out_dir)
        folders = []
        for target in tqdm(targets, desc="dry run", disable=not self.progress):
            request = self.build_request(target)
            folder = out_dir / target.dataset / target.annotation_id.replace("/", "_")
            folder.mkdir(parents=True, exist_ok=True)
            fingerprint = request.fingerprint()
            fingerprint["cache_key"] = self.key(target)
            (folder / "request.json").write_text(json.dumps(fingerprint, indent=2), encoding="utf-8")
            texts = [f"=== system ===\n{request.system_prompt}"]
            texts += [f"=== {t.role} ({len(t.images)} images) ===\n{t.text}" for t in request.turns]
            (folder / "prompt.txt").write_text("\n\n".join(texts) + "\n", encoding="utf-8")
            for i, image in enumerate(request.turns[-1].images):
                (folder / f"frame_{i}.png").write_bytes(image)
            folders.append(folder)
        return folders

    def _done(self, record: dict | None) -> bool:
        if record is None:
            return False
        return record.get("status") == "ok" or (record.get("status") == "invalid" and not self.retry_invalid)

    def _caption_one(self, target: Target) -> dict:
        # Stored by the worker itself, the moment it is known: an answer that was paid for
        # is on disk even if the main thread dies before collecting it.
        record = self._outcome(target)
        record["time"] = time.time()
        self.cache.append(record)
        return record

    def _outcome(self, target: Target) -> dict:
        record = {
            "key": self.key(target),
            "dataset": target.dataset,
            "annotation_id": target.annotation_id,
            "prompt_version": self.prompt_id,
            "model": self.model,
        }
        try:
            request = self.build_request(target)
        except InputError as exc:  # e.g. a missing frame: this object fails, the others go on
            return {**record, "status": "error", "reason": str(exc), "attempts": 0}

        def attempt():
            self.limiter.acquire()
            return self.client.generate(request)

        with self._rng_lock:
            rng = random.Random(self._rng.random())
        try:
            response, attempts = call_with_retry(
                attempt, max_retries=self.max_retries, backoff_base_s=self.backoff_base_s,
                backoff_max_s=self.backoff_max_s, sleep=self._sleep, rng=rng,
            )
        except VLMError as exc:
            return {**record, "status": "error", "reason": str(exc), "attempts": getattr(exc, "attempts", 1)}
        names = ([target.category] if target.category else []) + list(target.other_categories)
        parts = {}
        if self.style == "vocap":
            answer = parse_vocap_answer(response.text)
            parts = {"vocap": {"category": answer.category, "properties": answer.properties,
                               "action": answer.action}}
            check = (CaptionCheck("", answer.problem) if answer.problem is not None
                     else check_caption(answer.description, categories=names))
        else:
            check = check_caption(response.text, categories=names)
        return {
            **record, **parts,
            "status": "ok" if check.problem is None else "invalid",
            "caption": check.caption if check.problem is None else "",
            "answer": response.text,
            "reason": check.problem,
            "finish_reason": response.finish_reason,
            "attempts": attempts,
            "input_tokens": response.input_tokens,
            "output_tokens": response.output_tokens,
            "cost_usd": call_cost(self.model, response.input_tokens, response.output_tokens, self.prices),
        }

    def run(self, targets: Sequence[Target]) -> CaptionRun:
        """Caption ``targets`` (skipping those answered in the cache); see ``CaptionRun``."""
        keys = [self.key(t) for t in targets]
        if len(set(keys)) != len(keys):
            raise InputError("two objects share an annotation id", field="annotation id")
        result = CaptionRun(torn_cache_lines=self.cache.torn_lines)
        todo = [t for t, k in zip(targets, keys) if not self._done(self.cache.get(k))]
        result.cached = len(targets) - len(todo)
        if todo and self.client is None:
            raise InputError(f"{len(todo)} objects need a caption but no client is configured")
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = [pool.submit(self._caption_one, t) for t in todo]
            try:
                for future in tqdm(as_completed(futures), total=len(futures), desc="captioning", disable=not self.progress):
                    record = future.result()
                    result.requested += 1
                    if "input_tokens" in record:
                        result.usage.add(self.model, record["input_tokens"], record["output_tokens"], self.prices)
            except BaseException:
                # Crash or Ctrl-C: drop queued objects; answered ones are already on disk.
                for future in futures:
                    future.cancel()
                raise
        for target, key in zip(targets, keys):
            for past in self.cache.history(key):
                if "input_tokens" in past:
                    result.usage_total.add(self.model, past["input_tokens"], past["output_tokens"], self.prices)
            record = self.cache.get(key)
            if record.get("status") == "ok":
                result.captions[target.annotation_id] = record["caption"]
            else:
                result.failures.append({
                    "annotation_id": target.annotation_id,
                    "video_id": target.video_id,
                    "status": record.get("status"),
                    "reason": record.get("reason"),
                    "answer": record.get("answer"),
                })
        return result
