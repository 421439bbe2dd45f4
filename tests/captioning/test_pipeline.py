"""Resume, retries, validation and cost accounting of the captioning pipeline (no network)."""

from __future__ import annotations

import itertools
import json
import random

import pytest

from benchmark.captioning import (
    CaptionPipeline, CaptionResponse, RateLimiter, VLMError, call_with_retry, check_caption,
    load_prices, load_targets,
)


def make(lvvis, client, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("concurrency", 1)
    kw.setdefault("requests_per_minute", 1e6)
    kw.setdefault("sleep", lambda s: None)
    return CaptionPipeline(client=client, cache_path=lvvis["tmp"] / "cache.jsonl", **kw)


def targets(lvvis):
    return load_targets(lvvis["data"], frames_root=lvvis["frames_root"], dataset="lvvis")


def test_crash_midway_then_rerun_never_repeats_a_call(lvvis, fake_client):
    def crash_on_third(request, n):
        if n == 2:
            return RuntimeError("process killed")
        return CaptionResponse(text=f"A small animal number {n} walks across the floor.", input_tokens=10, output_tokens=5)

    first = fake_client(crash_on_third)
    with pytest.raises(RuntimeError, match="killed"):
        make(lvvis, first).run(targets(lvvis))
    # The worker may have started the next object before the crash reached the main thread;
    # whatever was answered is on disk, only the crashed call was lost.
    paid = len(first.requests) - 1
    assert paid >= 2
    lines = (lvvis["tmp"] / "cache.jsonl").read_text().splitlines()
    assert len(lines) == paid

    second = fake_client()
    run = make(lvvis, second, concurrency=3).run(targets(lvvis))
    assert len(second.requests) == 5 - paid                              # only the missing objects
    answered = {r.turns[-1].text for i, r in enumerate(first.requests) if i != 2}
    assert not answered & {r.turns[-1].text for r in second.requests}
    assert first.requests[2].turns[-1].text in {r.turns[-1].text for r in second.requests}
    assert len(run.captions) == 5 and run.failures == [] and run.cached == paid
    assert run.usage.calls == 5 - paid and run.usage_total.calls == 5

    third = fake_client()
    again = make(lvvis, third).run(targets(lvvis))
    assert third.requests == [] and again.captions == run.captions


def test_torn_last_line_is_tolerated_and_isolated(lvvis, fake_client):
    make(lvvis, fake_client()).run(targets(lvvis)[:2])
    cache = lvvis["tmp"] / "cache.jsonl"
    with open(cache, "a") as handle:
        handle.write('{"key": "lvvis|13|v1/bo')                         # crash while writing
    client = fake_client()
    run = make(lvvis, client).run(targets(lvvis))
    assert run.torn_cache_lines == 1
    assert len(client.requests) == 3 and len(run.captions) == 5
    lines = cache.read_text().splitlines()
    assert sum(1 for line in lines if line.startswith('{"key": "lvvis|13|v1/bo') and not line.endswith("}")) == 1
    assert len([json.loads(line) for line in lines if line.endswith("}")]) == 5


def test_429_then_success_is_retried_with_backoff(lvvis, fake_client):
    sleeps = []

    def script(request, n):
        if n == 0:
            return VLMError("quota", status_code=429)
        return CaptionResponse(text="A grey cat walks slowly to the right.", input_tokens=7, output_tokens=3)

    client = fake_client(script)
    later = itertools.count(0, 1000)                                      # the rate limiter never waits
    run = make(lvvis, client, sleep=sleeps.append, clock=lambda: next(later), backoff_base_s=2.0,
               rng=random.Random(0)).run(targets(lvvis)[:1])
    assert len(client.requests) == 2
    assert run.captions == {"11": "A grey cat walks slowly to the right."}
    assert len(sleeps) == 1 and 0.0 <= sleeps[0] <= 2.0
    record = json.loads((lvvis["tmp"] / "cache.jsonl").read_text().splitlines()[0])
    assert record["attempts"] == 2 and record["status"] == "ok"


def test_400_is_not_retried_and_is_reported_then_retried_next_run(lvvis, fake_client):
    client = fake_client(lambda request, n: VLMError("bad image", status_code=400))
    run = make(lvvis, client).run(targets(lvvis)[:1])
    assert len(client.requests) == 1
    assert run.captions == {}
    assert run.failures == [{"annotation_id": "11", "video_id": "1", "status": "error",
                             "reason": "HTTP 400: bad image", "answer": None}]
    # An API failure cost nothing: the next run asks again.
    second = fake_client()
    assert len(make(lvvis, second).run(targets(lvvis)[:1]).captions) == 1
    assert len(second.requests) == 1


def test_5xx_gives_up_after_max_retries_with_growing_backoff():
    sleeps, calls = [], []

    def always_503():
        calls.append(1)
        raise VLMError("unavailable", status_code=503)

    with pytest.raises(VLMError) as err:
        call_with_retry(always_503, max_retries=3, backoff_base_s=1.0, backoff_max_s=3.0,
                        sleep=sleeps.append, rng=random.Random(1))
    assert len(calls) == 4 and err.value.attempts == 4
    caps = [1.0, 2.0, 3.0]                                               # base * 2**k, capped
    assert all(0 <= s <= cap for s, cap in zip(sleeps, caps)) and len(sleeps) == 3


def test_retry_after_is_respected():
    sleeps, calls = [], []

    def once():
        calls.append(1)
        if len(calls) == 1:
            raise VLMError("slow down", status_code=429, retry_after_s=30.0)
        return "ok"

    assert call_with_retry(once, max_retries=2, backoff_base_s=1.0, backoff_max_s=5.0, sleep=sleeps.append) == ("ok", 2)
    assert sleeps == [30.0]


def test_invalid_answers_are_recorded_not_dropped_and_not_paid_twice(lvvis, fake_client):
    answers = {
        "11": "The cat inside the red box is sleeping.",
        "12": "I cannot identify the object in these frames.",
        "13": "A man stands still. He wears a blue coat.",
        "21": "A tabby cat sits on a wooden floor near a wall.",
        "22": "A brown cardboard box lies open on the ground.",             # "box" is its category
    }

    def script(request, n):
        ident = next(k for k, t in ids.items() if t == request.turns[-1].text)
        return CaptionResponse(text=answers[ident], input_tokens=100, output_tokens=20)

    pipeline = make(lvvis, None)
    ts = targets(lvvis)
    ids = {t.annotation_id: pipeline.build_request(t).turns[-1].text for t in ts}
    client = fake_client(script)
    run = make(lvvis, client).run(ts)
    assert set(run.captions) == {"21", "22"}
    reasons = {f["annotation_id"]: f["reason"] for f in run.failures}
    assert reasons == {"11": 'mentions the visual prompt ("box")', "12": "refusal", "13": "more than one sentence"}
    assert {f["status"] for f in run.failures} == {"invalid"}
    assert run.usage.calls == 5                                           # invalid answers were billed

    rerun = fake_client(script)
    make(lvvis, rerun).run(ts)
    assert rerun.requests == []                                           # not asked again by default
    make(lvvis, rerun, retry_invalid=True).run(ts)
    assert len(rerun.requests) == 3


@pytest.mark.parametrize("text,problem", [
    ("A red car drives along a wet road at night.", None),
    ('Caption: "A red car drives along a wet road."', None),
    ("A dog highlighted in the frames runs.", 'mentions the visual prompt ("highlighted")'),
    ("A person inside the bounding rectangle waves.", 'mentions the visual prompt ("bounding")'),
    ("Sorry, the object is too small to describe.", "refusal"),
    ("A cat.\nA dog.", "more than one sentence"),
    ("A cat sleeps. It wakes up.", "more than one sentence"),
    ("", "empty answer"),
    ("A cat.", "too short (2 words)"),
])
def test_check_caption(text, problem):
    assert check_caption(text).problem == problem


def test_cost_accounting_with_default_and_custom_prices(lvvis, fake_client, tmp_path):
    run = make(lvvis, fake_client()).run(targets(lvvis))
    # 5 calls x (1000 in * $0.10 + 50 out * $0.40) / 1e6 = 5 x 1.2e-4
    assert run.usage.calls == 5 and run.usage.input_tokens == 5000 and run.usage.output_tokens == 250
    assert run.usage.cost_usd == pytest.approx(6.0e-4)
    record = json.loads((lvvis["tmp"] / "cache.jsonl").read_text().splitlines()[0])
    assert record["cost_usd"] == pytest.approx(1.2e-4)

    prices_file = tmp_path / "prices.yaml"
    prices_file.write_text("my-model: {input_per_million: 2.0, output_per_million: 10.0}\n")
    prices = load_prices(prices_file)
    custom = CaptionPipeline(client=fake_client(), cache_path=tmp_path / "other.jsonl", model="my-model",
                             prices=prices, progress=False, requests_per_minute=1e6).run(targets(lvvis)[:2])
    assert custom.usage.cost_usd == pytest.approx(2 * (1000 * 2.0 + 50 * 10.0) / 1e6)

    unknown = CaptionPipeline(client=fake_client(), cache_path=tmp_path / "u.jsonl", model="nobody-knows",
                              progress=False, requests_per_minute=1e6).run(targets(lvvis)[:1])
    assert unknown.usage.unpriced_calls == 1 and unknown.usage.cost_usd == 0.0


def test_rate_limiter_spaces_calls():
    sleeps = []
    now = [100.0]
    limiter = RateLimiter(60, clock=lambda: now[0], sleep=sleeps.append)
    for _ in range(3):
        limiter.acquire()
    assert sleeps == [1.0, 2.0]
    now[0] = 110.0                                                        # idle for a while
    limiter.acquire()
    assert sleeps == [1.0, 2.0]


def test_prompt_version_and_model_are_part_of_the_key(lvvis, fake_client, monkeypatch):
    make(lvvis, fake_client()).run(targets(lvvis))
    client = fake_client()
    make(lvvis, client, model="gemini-2.5-flash").run(targets(lvvis))
    assert len(client.requests) == 5
    monkeypatch.setattr("benchmark.captioning.pipeline.PROMPT_VERSION", "v2")
    client = fake_client()
    make(lvvis, client).run(targets(lvvis))
    assert len(client.requests) == 5


def test_dry_run_writes_exact_prompts_and_images(lvvis, tmp_path):
    pipeline = make(lvvis, None)
    folders = pipeline.dry_run(targets(lvvis)[:1], tmp_path / "review")
    folder = folders[0]
    request = json.loads((folder / "request.json").read_text())
    expected = pipeline.build_request(targets(lvvis)[0]).fingerprint()
    assert {k: v for k, v in request.items() if k != "cache_key"} == expected
    assert sorted(p.name for p in folder.glob("*.png")) == [f"frame_{i}.png" for i in range(4)]
    assert "Category of the queried object: cat" in (folder / "prompt.txt").read_text()
    assert not (lvvis["tmp"] / "cache.jsonl").exists()


def test_vocap_style_sends_vocaps_own_prompt_and_keeps_the_parsed_description(lvvis, fake_client):
    from benchmark.captioning.prompts import VOCAP_PROMPT
    from benchmark.captioning.visual import render_views

    answers = {
        # VoCap's FORMAT with straight and typographic quotes: the DESCRIPTION is the caption.
        "11": "'The video shows a cat. The subject's properties are small, grey, furry. The subject's "
              "action is walking. A small grey cat walks to the right.'",
        "12": "The video shows a dog. The subject\u2019s properties are brown. The subject\u2019s action is "
              "static. A brown dog lies on the ground",
        "13": "I cannot perform the task for this video.",
        "21": "A cat sits on the floor.",                       # a plain caption: not VoCap's format
        "22": "The video shows a box. The subject's properties are brown. The subject's action is static. "
              "A brown box inside the red contour.",           # the description names the visual prompt
    }
    ts = targets(lvvis)

    def script(request, n):
        # VoCap's prompt is the whole text: the object is known only from its frames.
        ident = next(t.annotation_id for t in ts
                     if render_views(t, style="vocap", num_frames=4)[0].png == request.turns[-1].images[0])
        return CaptionResponse(text=answers[ident], input_tokens=100, output_tokens=20)

    client = fake_client(script)
    run = make(lvvis, client, style="vocap").run(ts)
    request = client.requests[0]
    assert request.system_prompt == "" and request.turns[-1].text == VOCAP_PROMPT
    assert VOCAP_PROMPT.startswith("Describe the subject in the red contour in the following video.")
    assert VOCAP_PROMPT.endswith("please say \u2018I cannot perform the task for this video.\u2019.")
    assert run.captions == {"11": "A small grey cat walks to the right.", "12": "A brown dog lies on the ground."}
    reasons = {f["annotation_id"]: f["reason"] for f in run.failures}
    assert reasons == {"13": "refusal", "21": "not in VoCap's answer format",
                       "22": 'mentions the visual prompt ("contour")'}
    stored = [json.loads(line) for line in (lvvis["tmp"] / "cache.jsonl").read_text().splitlines()]
    assert {r["annotation_id"]: r["vocap"]["category"] for r in stored} == {
        "11": "cat", "12": "dog", "13": "", "21": "", "22": "box"}
