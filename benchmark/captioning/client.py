"""The VLM call: a provider-neutral request/response and the google-genai (Gemini) client.

The pipeline only talks to objects with a ``generate(request) -> CaptionResponse`` method
that raise ``VLMError`` on API failures, so tests can use a fake client and other providers
can be added without touching the pipeline. ``google.genai`` is imported only when a
``GeminiClient`` is created.

Example:
    >>> req = CaptionRequest(model="gemini-2.0-flash", system_prompt="Be brief.",
    ...                      turns=(Turn(role="user", text="Hi"),))
    >>> req.fingerprint()["turns"][0]["text"]
    'Hi'
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any, Protocol

from benchmark.errors import ToolMissingError

DEFAULT_MODEL = "gemini-2.0-flash"
API_KEY_VARIABLES = ("GEMINI_API_KEY", "GOOGLE_API_KEY")


@dataclass(frozen=True)
class Turn:
    """One message: ``role`` is ``"user"`` or ``"model"``; images are PNG bytes, sent before
    the text."""

    role: str
    text: str
    images: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class CaptionRequest:
    """Everything sent to the model for one object."""

    model: str
    system_prompt: str
    turns: tuple[Turn, ...]
    temperature: float | None = None
    max_output_tokens: int = 128

    def fingerprint(self) -> dict[str, Any]:
        """The request as JSON, images replaced by their SHA-256 (for review and tests)."""
        return {
            "model": self.model,
            "system_prompt": self.system_prompt,
            "temperature": self.temperature,
            "max_output_tokens": self.max_output_tokens,
            "turns": [
                {
                    "role": t.role,
                    "text": t.text,
                    "images_sha256": [hashlib.sha256(img).hexdigest() for img in t.images],
                }
                for t in self.turns
            ],
        }


@dataclass(frozen=True)
class CaptionResponse:
    """The model's answer and the billed token counts (thinking tokens count as output)."""

    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str | None = None


@dataclass
class VLMError(Exception):
    """A failed API call. ``status_code`` is the HTTP status (``None``: no response, e.g. a
    network error or timeout)."""

    message: str
    status_code: int | None = None
    retry_after_s: float | None = field(default=None)

    def __str__(self) -> str:
        return f"HTTP {self.status_code}: {self.message}" if self.status_code else self.message

    @property
    def retryable(self) -> bool:
        """429 (rate limit / quota), 5xx and network failures are worth another try; other 4xx
        (bad request, bad key, blocked) fail the same way every time."""
        return self.status_code is None or self.status_code == 429 or self.status_code >= 500


class VLMClient(Protocol):
    """What the pipeline needs from a client."""

    def generate(self, request: CaptionRequest) -> CaptionResponse:
        """Send one request; raise ``VLMError`` when the API fails."""
        ...


class GeminiClient:
    """Gemini through ``google-genai``; the key comes from ``api_key`` or the environment
    (``GEMINI_API_KEY``, then ``GOOGLE_API_KEY``).

    Example:
        >>> client = GeminiClient()                                  # doctest: +SKIP
        >>> client.generate(request).text                            # doctest: +SKIP
    """

    def __init__(self, *, api_key: str | None = None, timeout_s: float = 120.0) -> None:
        try:
            from google import genai
            from google.genai import types
        except ImportError as exc:
            raise ToolMissingError(
                "captioning with Gemini needs google-genai: pip install 'dvoc-benchmark[captioning]'"
            ) from exc
        key = api_key or next((os.environ[v] for v in API_KEY_VARIABLES if os.environ.get(v)), None)
        if not key:
            raise ToolMissingError(
                f"no Gemini API key: set {' or '.join(API_KEY_VARIABLES)} (or use --dry-run)"
            )
        self._types = types
        self._errors = genai.errors
        self._client = genai.Client(
            api_key=key, http_options=types.HttpOptions(timeout=int(timeout_s * 1000))
        )

    def _contents(self, request: CaptionRequest) -> list[Any]:
        types = self._types
        contents = []
        for turn in request.turns:
            parts = [types.Part.from_bytes(data=img, mime_type="image/png") for img in turn.images]
            parts.append(types.Part.from_text(text=turn.text))
            contents.append(types.Content(role=turn.role, parts=parts))
        return contents

    def generate(self, request: CaptionRequest) -> CaptionResponse:
        """Send one request (blocking)."""
        config = self._types.GenerateContentConfig(
            system_instruction=request.system_prompt or None,
            temperature=request.temperature,
            max_output_tokens=request.max_output_tokens,
        )
        try:
            response = self._client.models.generate_content(
                model=request.model, contents=self._contents(request), config=config
            )
        except self._errors.APIError as exc:
            raise VLMError(str(exc.message or exc), status_code=exc.code) from exc
        except (OSError, TimeoutError) as exc:  # connection reset, DNS, timeout
            raise VLMError(f"network error: {exc}") from exc
        except Exception as exc:
            # httpx transport errors do not derive from OSError; anything else is a bug.
            if type(exc).__module__.startswith("httpx"):
                raise VLMError(f"network error: {exc}") from exc
            raise
        usage = response.usage_metadata
        finish = None
        if response.candidates:
            reason = response.candidates[0].finish_reason
            finish = getattr(reason, "name", None) or (str(reason) if reason else None)
        return CaptionResponse(
            text=response.text or "",
            input_tokens=(usage.prompt_token_count or 0) if usage else 0,
            output_tokens=((usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)) if usage else 0,
            finish_reason=finish,
        )
