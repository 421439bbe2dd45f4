"""CLIP image features for the official zero-shot class head: file formats, safe loading,
frame lookup, openai-clip preprocessing and extraction with a tiny random CLIP."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.errors import InputError
from reference_model.clip_features import (
    CLIP_MEAN,
    CLIP_STD,
    ClipImageEncoder,
    FrameFeatures,
    clip_preprocess,
    extract_features,
    extract_source_features,
    load_feature_file,
    official_key,
    save_feature_file,
    vidstg_frame_key,
)
from reference_model.data import load_source

LVVIS = "./datasets/LVVIS/val/JPEGImages"


@pytest.fixture(scope="module")
def clip_dir(tiny_clip_dir):
    return tiny_clip_dir


def _normalise(pixels: np.ndarray) -> np.ndarray:
    x = pixels.astype(np.float32) / np.float32(255)
    return ((x - np.array(CLIP_MEAN, np.float32)) / np.array(CLIP_STD, np.float32)).transpose(2, 0, 1)


def _features(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {f"{LVVIS}/00007/{k:05d}.jpg": torch.randn(1, 512, generator=g) for k in range(n)}


# --- preprocessing ---------------------------------------------------------------------------

def test_preprocess_without_resize_is_a_centre_crop_and_normalisation():
    # Short side already 8: torchvision's Resize leaves the image alone; the crop starts at
    # round((12 - 8) / 2) = 2.
    frame = np.random.default_rng(0).integers(0, 256, (8, 12, 3), dtype=np.uint8)
    expected = _normalise(frame[:, 2:10])
    assert np.abs(clip_preprocess(frame, size=8).numpy() - expected).max() < 1e-6


@pytest.mark.parametrize("shape, resized_wh, box", [
    # landscape: short side H=20 -> 8, W -> int(8 * 23 / 20) = 9; left = round(0.5) = 0 (halves to even)
    ((20, 23), (9, 8), (0, 0, 8, 8)),
    # portrait: short side W=20 -> 8, H -> int(8 * 28 / 20) = 11; top = round(1.5) = 2
    ((28, 20), (8, 11), (0, 2, 8, 10)),
    # landscape: W -> int(8 * 37 / 15) = 19; left = round(5.5) = 6
    ((15, 37), (19, 8), (6, 0, 14, 8)),
])
def test_preprocess_matches_openai_clip_transform(shape, resized_wh, box):
    frame = np.random.default_rng(1).integers(0, 256, (*shape, 3), dtype=np.uint8)
    image = Image.fromarray(frame).resize(resized_wh, Image.Resampling.BICUBIC).crop(box)
    expected = _normalise(np.asarray(image))
    assert np.abs(clip_preprocess(frame, size=8).numpy() - expected).max() < 1e-6


def test_preprocess_rejects_non_rgb_uint8():
    with pytest.raises(InputError, match="uint8 RGB"):
        clip_preprocess(np.zeros((8, 8, 3), np.float32), size=8)
    with pytest.raises(InputError, match="uint8 RGB"):
        clip_preprocess(np.zeros((8, 8), np.uint8), size=8)


# --- extraction ------------------------------------------------------------------------------

def test_extraction_shape_determinism_and_batching(clip_dir):
    frames = np.random.default_rng(2).integers(0, 256, (5, 20, 27, 3), dtype=np.uint8)
    encoder = ClipImageEncoder.load(clip_dir)
    a = encoder.encode(frames, batch_size=2)
    assert a.shape == (5, 512) and a.dtype == torch.float32
    assert torch.equal(a, encoder.encode(frames, batch_size=2))
    assert (a - encoder.encode(frames, batch_size=5)).abs().max() < 1e-5
    assert torch.equal(a, extract_features(frames, clip_dir, batch_size=2))
    # the features are the projected CLS token of the preprocessed frame, not normalised
    from transformers import CLIPModel

    model = CLIPModel.from_pretrained(clip_dir, local_files_only=True).eval()
    with torch.no_grad():
        pooled = model.vision_model(pixel_values=clip_preprocess(frames[3], size=32)[None]).pooler_output
        assert (model.visual_projection(pooled)[0] - a[3]).abs().max() < 1e-5
    assert not torch.allclose(a.norm(dim=1), torch.ones(5))


def test_encoder_load_errors(tmp_path, make_tiny_clip, clip_dir):
    with pytest.raises(InputError, match="config.json"):
        ClipImageEncoder.load(tmp_path / "absent")
    with pytest.raises(InputError, match="16-d features"):
        ClipImageEncoder.load(make_tiny_clip(tmp_path / "small", projection_dim=16))
    with pytest.raises(InputError, match=r"T >= 1"):
        ClipImageEncoder.load(clip_dir).encode(np.zeros((0, 8, 8, 3), np.uint8))


def test_dataset_extraction_save_load_lookup_round_trip(clip_dir, tmp_path):
    source = load_source("synthetic:num_videos=2,num_frames=3,height=24,width=40,seed=0")
    encoder = ClipImageEncoder.load(clip_dir)
    features = extract_source_features(source, encoder, key_prefix="datasets/synth/JPEGImages/", batch_size=2,
                                       progress=False)
    assert len(features) == 6 and all(v.shape == (1, 512) for v in features.values())
    out = save_feature_file(tmp_path / "synth_clip_feature.pkl", features)
    loaded = load_feature_file(out)
    for video_id, images in source.frame_images.items():
        names = [im["file_name"] for im in images]
        expected = encoder.encode(source.frames(video_id), batch_size=2)  # the same batches
        assert torch.equal(loaded.for_frames(names), expected)
        official = [f"/somewhere/CaptionFormer/datasets/synth/JPEGImages/{n}" for n in names]
        assert torch.equal(loaded.for_frames(official), expected)
    with pytest.raises(InputError, match="already exists"):
        save_feature_file(out, features)
    save_feature_file(out, _features(), overwrite=True)
    assert len(load_feature_file(out)) == 3


def test_extract_command(clip_dir, tmp_path):
    from benchmark.synthetic import generate
    from reference_model.__main__ import main

    generate(num_videos=1, num_frames=2, height=24, width=40, seed=3).save(tmp_path / "data")
    args = ["extract-clip-features", "--data", str(tmp_path / "data"), "--clip-model", str(clip_dir),
            "--out", str(tmp_path / "f.pkl"), "--key-prefix", "datasets/x/", "--cpu"]
    assert main(args) == 0
    loaded = load_feature_file(tmp_path / "f.pkl")
    source = load_source(tmp_path / "data")
    video_id, images = next(iter(source.frame_images.items()))
    expected = ClipImageEncoder.load(clip_dir).encode(source.frames(video_id))
    assert torch.allclose(loaded.for_frames([im["file_name"] for im in images]), expected, atol=1e-6)
    assert main(args) == 2  # never overwrites unasked


# --- file formats and lookup -----------------------------------------------------------------

@pytest.mark.parametrize("writer", ["torch", "torch_legacy", "torch_gpu_fp16", "pickle", "pickle_gpu_fp16",
                                    "numpy", "torch_numpy"])
def test_every_official_format_loads_the_same(tmp_path, monkeypatch, writer):
    data = _features()
    path = tmp_path / "f.pkl"
    if "gpu_fp16" in writer:
        # What the official scripts wrote on a GPU: float16 tensors whose storages say cuda:0
        # (loading them without map_location fails on a machine without CUDA).
        data = {k: v.half() for k, v in data.items()}
        monkeypatch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
    if writer == "torch_gpu_fp16":
        torch.save(data, path)
        monkeypatch.undo()
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=True)
    elif writer == "torch":
        torch.save(data, path)
    elif writer == "torch_legacy":
        torch.save(data, path, _use_new_zipfile_serialization=False)
    elif writer == "pickle":
        path.write_bytes(pickle.dumps(data))
    elif writer == "pickle_gpu_fp16":
        path.write_bytes(pickle.dumps(data))
        monkeypatch.undo()
    elif writer == "numpy":
        path.write_bytes(pickle.dumps({k: v.numpy()[0] for k, v in data.items()}))
    else:  # the official multi-GPU example stores numpy arrays in a torch.save dict
        torch.save({k: v.numpy() for k, v in data.items()}, path)
    loaded = load_feature_file(path)
    assert loaded.names == tuple(data) and loaded.matrix.dtype == torch.float32
    assert torch.equal(loaded.matrix, torch.cat([v.float() for v in data.values()]))


def test_lookup_rules():
    features = FrameFeatures.from_mapping({
        **_features(2),
        "datasets/VidSTG/video/0000/2401075277/0013.jpg": torch.full((512,), 7.0),
        "other/00007/00000.jpg": torch.full((1, 512), 9.0),
    }, source="f.pkl")
    # exact, then the official rewrite, then the longest path suffix
    assert features.for_frames([f"{LVVIS}/00007/00001.jpg"])[0, 0] == features.matrix[1, 0]
    assert features.for_frames(["/x/datasets/LVVIS/val/JPEGImages/00007/00001.jpg"])[0, 0] == features.matrix[1, 0]
    assert features.for_frames(["JPEGImages/00007/00000.jpg"])[0, 0] == features.matrix[0, 0]
    assert features.for_frames([vidstg_frame_key("2401075277/00012.jpg")])[0, 0] == 7.0
    assert features.for_frames([]).shape == (0, 512)
    with pytest.raises(InputError, match="several stored frames") as err:
        features.for_frames(["00007/00000.jpg"])  # LV-VIS and "other" end the same way
    assert "f.pkl" in str(err.value)
    with pytest.raises(InputError, match="no CLIP feature for frame '00007/00002.jpg'") as err:
        features.for_frames(["00007/00002.jpg"])
    assert str(err.value).startswith("f.pkl")
    with pytest.raises(InputError, match="no CLIP feature"):
        features.for_frames(["99999/00001.jpg"])  # same file name, other video: no match
    assert official_key("./datasets/a/b.jpg") == "datasets/a/b.jpg"
    with pytest.raises(InputError, match="VidSTG frame name"):
        vidstg_frame_key("2401075277/first.jpg")


@pytest.mark.parametrize("data, message", [
    ([torch.zeros(1, 512)], "expected a dict"),
    ({}, "no features"),
    ({1: torch.zeros(1, 512), "a.jpg": torch.zeros(1, 512)}, "mixes image ids and frame paths"),
    ({"a.jpg": torch.zeros(1, 256)}, r"shape \(1, 256\)"),
    ({"a.jpg": torch.zeros(2, 512)}, r"shape \(2, 512\)"),
    ({"a.jpg": torch.zeros(1, 512, dtype=torch.long)}, "torch.int64 tensor"),
    ({"a.jpg": torch.full((1, 512), float("nan"))}, "NaN"),
    ({"a.jpg": [0.0] * 512}, "is a list"),
])
def test_bad_contents_name_the_file_and_key(tmp_path, data, message):
    path = tmp_path / "bad.pkl"
    torch.save(data, path)
    with pytest.raises(InputError, match=message) as err:
        load_feature_file(path)
    assert str(err.value).startswith(str(path))
    if isinstance(data, dict) and data and isinstance(next(iter(data)), str):
        assert "'a.jpg'" in str(err.value) or "record a.jpg" in str(err.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(InputError, match="no such CLIP feature file"):
        load_feature_file(tmp_path / "absent.pkl")
    (tmp_path / "junk.pkl").write_bytes(b"\x00not a pickle")
    with pytest.raises(InputError, match="not a readable"):
        load_feature_file(tmp_path / "junk.pkl")


class _Shell:
    """Unpickling this runs a shell command (the attack a pickle allows)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _NestedShell:
    """A fake tensor storage whose nested torch archive is the attack."""

    def __init__(self, marker):
        self.payload = pickle.dumps(_Shell(marker), protocol=2)  # as torch.save writes storages

    def __reduce__(self):
        return torch.storage._load_from_bytes, (self.payload,)


@pytest.mark.parametrize("writer", ["pickle", "torch", "nested"])
def test_malicious_pickles_are_refused_without_running(tmp_path, writer):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    if writer == "pickle":
        path.write_bytes(pickle.dumps({"a.jpg": _Shell(marker)}))
    elif writer == "torch":
        torch.save({"a.jpg": _Shell(marker)}, path)
    else:
        path.write_bytes(pickle.dumps({"a.jpg": _NestedShell(marker)}))
    with pytest.raises(InputError, match="refusing to load") as err:
        load_feature_file(path)
    assert "system" in str(err.value) and str(err.value).startswith(str(path))
    assert not marker.exists()
