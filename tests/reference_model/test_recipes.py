"""Training recipes: the appendix's numbers, stage chaining and resumption on a tiny run,
clear errors, the CLI, and the ResNet-50 paper configuration."""

from __future__ import annotations

import doctest
import json

import pytest
import torch

import reference_model.train as train_module
from benchmark.errors import InputError
from reference_model import recipes
from reference_model.__main__ import main
from reference_model.config import get_config
from reference_model.model import MaskCaptioner
from reference_model.pixel_decoder import PixelDecoder
from reference_model.recipes import RECIPES, run_recipe, scaled_steps, training_short_edge

SPEC = "synthetic:num_videos=2,num_frames=4,height=48,width=64,max_objects=2,seed={}"
# LV-VIS: 22k detector steps -> 2, 2k caption steps -> 1 (the minimum).
SCALE = 1e-4
# The linear class head, which needs no CLIP inputs (the zero-shot recipes are tested below).
FAST = dict(config_name="tiny", scale=SCALE, progress=False, class_head="linear")

# The appendix's schedules: (stage, steps, batch, start, video-level captions) per recipe,
# and its data roles. Video-level caption tuning reads one video per step (batch 1).
EXPECTED = {
    "lviscoco-pretrain": ([("detector", 440_000, 4, "new", False), ("caption", 5_000, 4, "previous", False)],
                          ["lvis", "coco"]),
    "vidstg": ([("detector", 40_000, 8, "new", False), ("caption", 2_000, 1, "previous", True)], ["vidstg"]),
    "lvvis": ([("detector", 22_000, 4, "new", False), ("caption", 2_000, 4, "previous", False)], ["lvvis"]),
    "vidstg-finetune": ([("detector", 15_000, 8, "init", False), ("caption", 2_000, 1, "previous", True)],
                        ["vidstg"]),
    "vln-finetune": ([("detector", 15_000, 8, "init", False), ("caption", 500, 1, "previous", True)], ["vln"]),
    "bensmot-finetune": ([("detector", 15_000, 8, "init", False), ("caption", 2_000, 1, "previous", True)],
                         ["bensmot"]),
    "lvvis-end2end": ([("end2end", 2_000, 4, "init", False)], ["lvvis"]),
}


def test_registry_holds_the_appendix_numbers():
    got = {name: ([(s.kind, s.steps, s.batch_size, s.start, s.video_captions) for s in r.stages],
                  [role for role, _ in r.data])
           for name, r in RECIPES.items()}
    assert got == EXPECTED
    assert RECIPES["lviscoco-pretrain"].data == (("lvis", 1.0), ("coco", 1.0))
    assert RECIPES["lviscoco-pretrain"].media == "images"
    assert {name for name, r in RECIPES.items() if r.needs_init} == {
        "vidstg-finetune", "vln-finetune", "bensmot-finetune", "lvvis-end2end"}
    # The class heads of the official checkpoints of each dataset.
    assert {name for name, r in RECIPES.items() if r.class_head == "linear"} == {"vln-finetune", "bensmot-finetune"}


def test_short_edges_and_scaling():
    assert training_short_edge(get_config("paper"), "images") == 800
    assert training_short_edge(get_config("paper"), "videos") == 480
    assert training_short_edge(get_config("paper-r50"), "images") == 800
    assert training_short_edge(get_config("paper-r50"), "videos") == 360
    assert training_short_edge(get_config("tiny"), "images") == 64
    assert [scaled_steps(n, SCALE) for n in (22_000, 2_000, 15_000, 500)] == [2, 1, 2, 1]


def test_docstring_examples():
    result = doctest.testmod(recipes)
    assert result.attempted > 0 and result.failed == 0


@pytest.fixture(scope="module")
def lvvis_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("lvvis")
    last = run_recipe("lvvis", data={"lvvis": SPEC.format(1)}, out=out, **FAST)
    return out, last


def _load(path):
    return torch.load(path, map_location="cpu", weights_only=False)


def test_stages_chain_and_caption_starts_from_detector(lvvis_run):
    out, last = lvvis_run
    assert last == out / "caption" / "checkpoint.pt"
    detector, caption = _load(out / "detector" / "checkpoint.pt"), _load(last)
    assert (detector["stage"], detector["step"]) == ("detector", 2)
    assert (caption["stage"], caption["step"]) == ("caption", 1)
    # The caption stage freezes the detector: its weights are the detector stage's, and the
    # caption head moved.
    detector_keys = [k for k in detector["model"] if not k.startswith("caption_head.")]
    assert detector_keys
    for key in detector_keys:
        assert torch.equal(detector["model"][key], caption["model"][key]), key
    assert any(not torch.equal(detector["model"][k], caption["model"][k])
               for k in detector["model"] if k.startswith("caption_head.") and k.endswith("weight"))
    assert (out / "detector" / "done.json").is_file() and (out / "caption" / "done.json").is_file()


def test_rerunning_a_finished_recipe_trains_nothing(lvvis_run, monkeypatch):
    out, last = lvvis_run
    calls = []
    monkeypatch.setattr(train_module, "train", lambda **kwargs: calls.append(kwargs))
    assert run_recipe("lvvis", data={"lvvis": SPEC.format(1)}, out=out, **FAST) == last
    assert calls == []


def test_run_interrupted_after_stage_one_continues_with_stage_two(tmp_path, monkeypatch):
    real_train = train_module.train
    stages = []

    def killed_in_caption_stage(**kwargs):
        stages.append(kwargs["opts"].stage)
        if kwargs["opts"].stage == "caption":
            raise KeyboardInterrupt
        return real_train(**kwargs)

    monkeypatch.setattr(train_module, "train", killed_in_caption_stage)
    with pytest.raises(KeyboardInterrupt):
        run_recipe("lvvis", data={"lvvis": SPEC.format(1)}, out=tmp_path, **FAST)
    assert not (tmp_path / "caption" / "checkpoint.pt").exists()

    stages.clear()

    def counted(**kwargs):
        stages.append((kwargs["opts"].stage, kwargs["init_checkpoint"]))
        return real_train(**kwargs)

    monkeypatch.setattr(train_module, "train", counted)
    last = run_recipe("lvvis", data={"lvvis": SPEC.format(1)}, out=tmp_path, **FAST)
    assert stages == [("caption", str(tmp_path / "detector" / "checkpoint.pt"))]
    assert _load(last)["step"] == 1


def test_finetune_starts_from_init(lvvis_run, tmp_path):
    _, pretrained = lvvis_run
    last = run_recipe("lvvis-end2end", data={"lvvis": SPEC.format(2)}, out=tmp_path, init=pretrained, **FAST)
    assert last == tmp_path / "end2end" / "checkpoint.pt"
    assert _load(last)["step"] == 1
    # A run folder is not resumed with other settings.
    with pytest.raises(InputError, match="scale"):
        run_recipe("lvvis-end2end", data={"lvvis": SPEC.format(2)}, out=tmp_path, init=pretrained,
                   config_name="tiny", scale=1.0, progress=False)


def test_errors_name_what_is_missing(lvvis_run, tmp_path):
    _, pretrained = lvvis_run
    with pytest.raises(InputError, match="missing: coco"):
        run_recipe("lviscoco-pretrain", data={"lvis": SPEC.format(1)}, out=tmp_path, **FAST)
    with pytest.raises(InputError, match="not vidstg"):
        run_recipe("lvvis", data={"lvvis": SPEC.format(1), "vidstg": SPEC.format(1)}, out=tmp_path, **FAST)
    with pytest.raises(InputError, match="--init"):
        run_recipe("vln-finetune", data={"vln": SPEC.format(1)}, out=tmp_path, **FAST)
    with pytest.raises(InputError, match="no such checkpoint"):
        run_recipe("vln-finetune", data={"vln": SPEC.format(1)}, out=tmp_path, init=tmp_path / "none.pt", **FAST)
    converted = tmp_path / "converted"
    converted.mkdir()
    (converted / "config.json").write_text("{}")
    with pytest.raises(InputError, match="not a convert-official config.json"):
        run_recipe("vln-finetune", data={"vln": SPEC.format(1)}, out=tmp_path, init=converted, **FAST)
    with pytest.raises(InputError, match="--config tiny"):
        run_recipe("vln-finetune", data={"vln": SPEC.format(1)}, out=tmp_path, init=pretrained,
                   config_name="paper-r50")
    with pytest.raises(InputError, match="unknown recipe"):
        run_recipe("lvis", data={}, out=tmp_path)
    assert not any(tmp_path.glob("*/checkpoint.pt")), "nothing trained"


def test_video_level_caption_stage_of_a_recipe(tmp_path):
    data = "synthetic:num_videos=2,num_frames=6,height=48,width=64,max_objects=2,seed=1"
    last = run_recipe("vidstg", data={"vidstg": data}, out=tmp_path, **FAST)
    done = json.loads((tmp_path / "caption" / "done.json").read_text())
    assert done["options"]["video_captions"] is True and done["options"]["batch_size"] == 1
    detector = torch.load(tmp_path / "detector" / "checkpoint.pt", weights_only=False)["model"]
    caption = torch.load(last, weights_only=False)["model"]
    assert {k.split(".")[0] for k in detector if not torch.equal(detector[k], caption[k])} == {"caption_head"}


def test_batch_is_split_among_processes_and_micro_batches(tmp_path, monkeypatch):
    seen = []

    def fake_train(*, out, opts, **kwargs):
        seen.append((opts.stage, opts.batch_size, opts.accumulate))
        out.mkdir(parents=True, exist_ok=True)
        return out / "checkpoint.pt"

    monkeypatch.setattr(train_module, "train", fake_train)
    monkeypatch.setenv("WORLD_SIZE", "2")
    run_recipe("lvvis", data={"lvvis": SPEC.format(1)}, out=tmp_path, options={"accumulate": 2}, **FAST)
    assert seen == [("detector", 1, 2), ("caption", 1, 2)]
    monkeypatch.setenv("WORLD_SIZE", "8")
    with pytest.raises(InputError, match="batch of 4 clips"):
        run_recipe("lvvis", data={"lvvis": SPEC.format(1)}, out=tmp_path / "b", **FAST)


def test_cli_lists_recipes_and_reports_errors(capsys, tmp_path):
    assert main(["recipe", "--list"]) == 0
    listed = capsys.readouterr().out
    for name in RECIPES:
        assert name in listed
    assert main(["recipe", "vln-finetune", "--data", f"vln={SPEC.format(1)}", "--out", str(tmp_path),
                 "--config", "tiny"]) == 2
    assert "--init" in capsys.readouterr().err
    assert main(["recipe", "lvvis", "--data", "lvvis", "--out", str(tmp_path)]) == 2
    assert "ROLE=SPEC" in capsys.readouterr().err


def test_cli_runs_a_recipe(tmp_path, capsys, tiny_clip_dir):
    common = ["recipe", "lvvis", "--data", f"lvvis={SPEC.format(1)}", "--config", "tiny", "--scale", str(SCALE)]
    assert main([*common, "--out", str(tmp_path / "linear"), "--class-head", "linear"]) == 0
    assert f"checkpoint: {tmp_path / 'linear' / 'caption' / 'checkpoint.pt'}" in capsys.readouterr().out
    # The recipe's own zero-shot head, with its CLIP inputs.
    assert main(["extract-clip-features", "--data", SPEC.format(1), "--clip-model", str(tiny_clip_dir),
                 "--out", str(tmp_path / "f.pt")]) == 0
    assert main([*common, "--out", str(tmp_path / "zs"), "--clip-features", f"lvvis={tmp_path / 'f.pt'}",
                 "--clip-model", str(tiny_clip_dir)]) == 0
    last = tmp_path / "zs" / "caption" / "checkpoint.pt"
    assert torch.load(last, weights_only=False)["config"]["class_head"] == "zero_shot"
    assert main([*common, "--out", str(tmp_path / "bad"), "--clip-features", "lvvis"]) == 2
    assert "ROLE=FILE" in capsys.readouterr().err


def test_paper_r50_config_builds():
    cfg = get_config("paper-r50")
    assert (cfg.backbone_type, cfg.short_edge, cfg.hidden_dim, cfg.num_queries) == ("resnet", 360, 256, 100)
    with torch.device("meta"):
        model = MaskCaptioner(config=cfg, vocab_size=50272, pad_token_id=1, bos_token_id=2, eos_token_id=2)
    # torchvision's ResNet-50 without its classifier: 23.5 M parameters
    encoder = model.pixel_decoder.module.encoder
    assert sum(p.numel() for p in encoder.parameters()) == pytest.approx(23.5e6, rel=0.01)
    assert len(model.decoder.layers) == 10
    # Real random weights: the backbone and pixel decoder on a small frame.
    torch.manual_seed(0)
    pixel_decoder = PixelDecoder(config=cfg).eval()
    with torch.no_grad():
        levels, mask_features = pixel_decoder(torch.rand(1, 3, 96, 128))
    assert [tuple(level.shape) for level in levels] == [(1, 256, 3, 4), (1, 256, 6, 8), (1, 256, 12, 16)]
    assert mask_features.shape == (1, 256, 24, 32)


def test_zero_shot_recipe_reads_features_per_role(tmp_path, tiny_clip_dir, lvvis_run):
    from reference_model.clip_features import ClipImageEncoder, extract_source_features, save_feature_file
    from reference_model.data import load_source

    data = "synthetic:num_videos=2,num_frames=6,height=48,width=64,max_objects=2,seed=1"
    features = save_feature_file(tmp_path / "f.pt", extract_source_features(
        load_source(data), ClipImageEncoder.load(tiny_clip_dir), progress=False))
    zero_shot = dict(config_name="tiny", scale=SCALE, progress=False)  # the vidstg recipe's own head
    with pytest.raises(InputError, match=r"--clip-features ROLE=FILE for each data role of 'vidstg' \(vidstg\); "
                                         "missing: vidstg"):
        run_recipe("vidstg", data={"vidstg": data}, out=tmp_path / "a", **zero_shot)
    with pytest.raises(InputError, match="not the linear one"):
        run_recipe("vidstg", data={"vidstg": data}, out=tmp_path / "a", clip_features={"vidstg": features}, **FAST)
    # Video-level caption tuning after the detector stage, both with the zero-shot head.
    last = run_recipe("vidstg", data={"vidstg": data}, out=tmp_path / "run", clip_features={"vidstg": str(features)},
                      clip_model=str(tiny_clip_dir), **zero_shot)
    ckpt = torch.load(last, weights_only=False)
    assert ckpt["config"]["class_head"] == "zero_shot" and ckpt["stage"] == "caption"
    detector = torch.load(tmp_path / "run" / "detector" / "checkpoint.pt", weights_only=False)["model"]
    assert {k.split(".")[0] for k in detector if not torch.equal(detector[k], ckpt["model"][k])} == {"caption_head"}
    # Resuming the folder with the other head, or fine-tuning a linear checkpoint with the
    # zero-shot one, is refused.
    with pytest.raises(InputError, match="class_head"):
        run_recipe("vidstg", data={"vidstg": data}, out=tmp_path / "run", **FAST)
    _, linear = lvvis_run
    with pytest.raises(InputError, match="has a linear class head, not zero_shot: run the recipe with --class-head "
                                         "linear"):
        run_recipe("vidstg-finetune", data={"vidstg": data}, out=tmp_path / "ft", init=linear,
                   clip_features={"vidstg": str(features)}, clip_model=str(tiny_clip_dir), class_head="zero_shot",
                   **zero_shot)
    # Without --class-head, fine-tuning keeps the --init checkpoint's head (vln-finetune's
    # own is linear).
    last = run_recipe("vln-finetune", data={"vln": data}, out=tmp_path / "vln", init=tmp_path / "run" / "caption",
                      clip_features={"vln": str(features)}, clip_model=str(tiny_clip_dir), **zero_shot)
    assert torch.load(last, weights_only=False)["config"]["class_head"] == "zero_shot"
