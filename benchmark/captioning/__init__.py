"""Synthetic object captions with a VLM (MaskCaptioner's LVISCap / LV-VISCap pipeline).

Example:
    >>> from benchmark.captioning import CaptionPipeline, GeminiClient, load_targets  # doctest: +SKIP
    >>> targets = load_targets(read_json("val_instances.json"), frames_root="JPEGImages/val",
    ...                        dataset="lvvis_val")                                 # doctest: +SKIP
    >>> run = CaptionPipeline(client=GeminiClient(), cache_path="cache.jsonl").run(targets)  # doctest: +SKIP

Only ``GeminiClient`` needs ``google-genai`` and only the visual prompts need OpenCV; both
are imported when used.
"""

from benchmark.atomic import write_json_atomic
from benchmark.captioning.cache import CaptionCache, cache_key
from benchmark.captioning.client import (
    DEFAULT_MODEL,
    CaptionRequest,
    CaptionResponse,
    GeminiClient,
    Turn,
    VLMClient,
    VLMError,
)
from benchmark.captioning.costs import DEFAULT_PRICES, Price, Usage, load_prices
from benchmark.captioning.pipeline import CaptionPipeline, CaptionRun, RateLimiter, call_with_retry, load_few_shot
from benchmark.captioning.prompts import PROMPT_VERSION, SYSTEM_PROMPTS, user_prompt
from benchmark.captioning.sources import Target, add_captions, detect_format, load_targets, read_json
from benchmark.captioning.validate import CaptionCheck, check_caption

__all__ = [
    "CaptionCache", "cache_key", "DEFAULT_MODEL", "CaptionRequest", "CaptionResponse",
    "GeminiClient", "Turn", "VLMClient", "VLMError", "DEFAULT_PRICES", "Price", "Usage",
    "load_prices", "CaptionPipeline", "CaptionRun", "RateLimiter", "call_with_retry",
    "load_few_shot", "PROMPT_VERSION", "SYSTEM_PROMPTS", "user_prompt", "Target",
    "add_captions", "detect_format", "load_targets", "read_json", "write_json_atomic",
    "CaptionCheck", "check_caption",
]
