"""ViCaS caption accuracy: scoring rules with a fake judge, the cache, both real backends."""

from __future__ import annotations

import sys
import types
from dataclasses import replace

import pytest

from benchmark.captions.cache import PairScoreCache
from benchmark.metrics.caption_accuracy import (GREEDY_DECODING, PROMPTS, VICAS_DECODING, CaptionItem,
                                                GeminiJudge, TransformersJudge, caption_accuracy,
                                                load_vicas_caption_items, parse_score)


class ScriptedJudge:
    """Answers by GT variant; records every prompt it is asked."""

    def __init__(self, answers, model_id="fake-1"):
        self.answers = answers
        self.model_id = model_id
        self.calls = []

    def generate(self, system, user):
        self.calls.append((system, user))
        gt = user.split("GROUND-TRUTH: ")[1].split("\n")[0]
        return self.answers[gt]


def test_parse_score_rules():
    assert parse_score("4") == 4.0
    assert parse_score(" 2.5\n") == 2.5
    assert parse_score("4/5") == 0.0  # non-numeric
    assert parse_score("The score is 3") == 0.0
    assert parse_score("nan") == 0.0
    assert parse_score("9") == 5.0 and parse_score("-2") == 0.0  # clipped


def test_variants_averaged_per_video_then_over_videos():
    judge = ScriptedJudge({"g1": "4", "g2": "five", "g3": "7", "h1": "2.5"})
    items = [CaptionItem(1, "a dog runs", ["g1", "g2", "g3"]), CaptionItem(2, "a cat", ["h1"])]
    res = caption_accuracy(items, judge=judge)
    per_video = res.per_video.set_index("video_id")["CA"]
    assert per_video[1] == pytest.approx((4 + 0 + 5) / 3)
    assert per_video[2] == 2.5
    assert res.summary["CA"] == pytest.approx(((4 + 0 + 5) / 3 + 2.5) / 2)
    system, user = judge.calls[0]
    assert system == PROMPTS["vicas-1"].system
    assert "GROUND-TRUTH: g1\n\n\nPREDICTED: a dog runs\n" in user


def test_cache_skips_known_pairs_and_is_keyed_by_model_and_prompt(tmp_path):
    path = tmp_path / "cache.sqlite"
    items = [CaptionItem(1, "p", ["g1", "g2"]), CaptionItem(2, "p", ["g1"])]
    first = ScriptedJudge({"g1": "3", "g2": "1"})
    with PairScoreCache(path) as cache:
        res = caption_accuracy(items, judge=first, cache=cache)
    assert len(first.calls) == 2  # (g1, p) is asked once for both videos
    again = ScriptedJudge({"g1": "0", "g2": "0"})  # would change the result if asked
    with PairScoreCache(path) as cache:
        res2 = caption_accuracy(items, judge=again, cache=cache)
    assert again.calls == [] and res2.summary["CA"] == res.summary["CA"] == pytest.approx(2.5)
    assert res2.summary["judged_now"] == 0
    other_model = ScriptedJudge({"g1": "0", "g2": "0"}, model_id="fake-2")
    with PairScoreCache(path) as cache:
        assert caption_accuracy(items, judge=other_model, cache=cache).summary["CA"] == 0.0
    assert len(other_model.calls) == 2


def test_load_vicas_items_uses_all_gt_variants():
    gt = [{"video_id": 5, "caption_parsed_en": "A", "caption_parsed_en_gpt": "B",
           "reworded_en_captions": ["C", "D", "E", "F"]}]
    items = load_vicas_caption_items(gt, [{"video_id": 5, "pred_caption": "P"}])
    assert items == [CaptionItem(5, "P", ["A", "B", "C", "D", "E", "F"])]


def test_gemini_backend_is_deterministic_and_lazy(monkeypatch):
    seen = {}

    class Config:
        def __init__(self, **kwargs):
            seen["config"] = kwargs

    class Models:
        def generate_content(self, *, model, contents, config):
            seen["model"], seen["contents"] = model, contents
            return types.SimpleNamespace(text="3\n")

    class Client:
        def __init__(self, **kwargs):
            self.models = Models()

    genai = types.ModuleType("google.genai")
    genai.Client = Client
    genai.types = types.SimpleNamespace(GenerateContentConfig=Config)
    google = types.ModuleType("google")
    google.genai = genai
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.genai", genai)
    monkeypatch.setitem(sys.modules, "google.genai.types", genai.types)
    judge = GeminiJudge(model="gemini-x", api_key="k")
    res = caption_accuracy([CaptionItem(1, "pred", ["gt"])], judge=judge)
    assert res.summary["CA"] == 3.0
    # ViCaS's decoding by default: temperature 0.6, top-p 0.9, a seed derived from seed 1.
    config = seen["config"]
    assert seen["model"] == "gemini-x" and (config["temperature"], config["top_p"]) == (0.6, 0.9)
    system, user = PROMPTS["vicas-1"].render("gt", "pred")
    assert config["seed"] == VICAS_DECODING.pair_seed(system, user) % 2**31
    assert config["max_output_tokens"] == 8191 and judge.model_id == "gemini:gemini-x:vicas-t0.6-p0.9-seed1-max8191"
    assert config["system_instruction"] == PROMPTS["vicas-1"].system
    assert "PREDICTED: pred" in seen["contents"]
    greedy = GeminiJudge(model="gemini-x", api_key="k", decoding=GREEDY_DECODING)
    greedy.generate("s", "u")
    assert seen["config"]["temperature"] == 0.0 and "seed" not in seen["config"]
    assert greedy.model_id == "gemini:gemini-x:greedy-max8"


def test_transformers_backend_on_a_tiny_saved_model(tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    # Word-level vocabulary; id 0 is "4". With an all-zero output layer every logit ties and
    # greedy decoding picks id 0, so the judge must answer "4" whatever the prompt.
    words = ["4", "[UNK]", "[EOS]"] + sorted({w for w in (
        PROMPTS["vicas-1"].system + PROMPTS["vicas-1"].user).split()})
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]",
                                                eos_token="[EOS]")
    config = transformers.LlamaConfig(vocab_size=len(vocab), hidden_size=16,
                                      intermediate_size=32, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=2,
                                      max_position_embeddings=2048, eos_token_id=2)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    with torch.no_grad():
        model.lm_head.weight.zero_()
    model.save_pretrained(tmp_path / "tiny")
    fast.save_pretrained(tmp_path / "tiny")

    judge = TransformersJudge(model_path=tmp_path / "tiny", decoding=replace(GREEDY_DECODING, max_new_tokens=1))
    assert judge.model_id.startswith("transformers:tiny:") and judge.model_id.endswith(":greedy-max1")
    res = caption_accuracy([CaptionItem(1, "a man runs", ["a man is running", "a runner"])],
                           judge=judge)
    assert res.summary["CA"] == 4.0
    two = TransformersJudge(model_path=tmp_path / "tiny", decoding=replace(GREEDY_DECODING, max_new_tokens=2))
    assert parse_score(two.generate("x", "y")) == 0.0  # "4 4" is not a number

    # ViCaS's decoding (the default): pure top-p sampling, every token equally likely here;
    # one prompt's sample is the same in any order, another prompt's or seed's differs.
    sampler = TransformersJudge(model_path=tmp_path / "tiny", decoding=replace(VICAS_DECODING, max_new_tokens=6))
    assert sampler.generate_kwargs == {"max_new_tokens": 6, "do_sample": True, "temperature": 0.6,
                                       "top_p": 0.9, "top_k": 0}
    first = sampler.generate("s", "prompt one")
    sampler.generate("s", "prompt two")
    assert sampler.generate("s", "prompt one") == first
    answers = {sampler.generate("s", f"prompt {k}") for k in range(6)}
    assert len(answers) > 1
    other_seed = TransformersJudge(model_path=tmp_path / "tiny",
                                   decoding=replace(VICAS_DECODING, max_new_tokens=6, seed=2))
    assert [other_seed.generate("s", f"prompt {k}") for k in range(6)] != \
        [sampler.generate("s", f"prompt {k}") for k in range(6)]
    assert TransformersJudge(model_path=tmp_path / "tiny").model_id.endswith(":vicas-t0.6-p0.9-seed1-max8191")
