"""``python -m reference_model golden-check DIR``: run our model on a golden bundle made by
the official CaptionFormer code and compare every stage.

A bundle (``../shared/golden/model/<name>/``) holds ``config.json`` (the official
configuration with the sizes it shrank), ``state_dict.pt`` (official key names),
``input.pt`` (the video, its CLIP image features) and ``outputs.pt`` (every intermediate of
the official run). The check converts the state dict with the official converter, builds the
configuration that ``config.json`` describes, runs :func:`reference_model.official.run_video`
on the input with the official RNG seed and prints the largest difference per stage. It
fails beyond ``tolerance`` (1e-5, fp32) or on any differing track, token or mask.

Example:
    $ python -m reference_model golden-check ../shared/golden/model/vidstg_tempagg
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reference_model.config import ModelConfig, get_config
from reference_model.model import MaskCaptioner
from reference_model.official import Trace, run_video
from reference_model.postprocess import output_mask_logits

_TRACKERS = {"topk_vote_memory": "vote", "hungarian_prev_clip": "hungarian"}


def config_from_bundle(bundle: dict[str, Any]) -> ModelConfig:
    """Our configuration for a golden bundle's ``config.json``: the official one of its mode
    with every size the bundle shrank and every inference setting it records.
    """
    sizes = {key: value["golden"] for key, value in bundle.get("shrunk_vs_full", {}).items()}
    outside = bundle.get("shrunk_outside_config", {})
    inference = bundle["inference"]
    base = get_config("vidstg-tempagg" if bundle["mode"] == "box" else "vln")
    swin = dict(base.backbone_kwargs)
    for key, name in (("EMBED_DIM", "embed_dim"), ("DEPTHS", "depths"), ("NUM_HEADS", "num_heads"),
                      ("WINDOW_SIZE", "window_size")):
        swin[name] = sizes.get(f"MODEL.SWIN.{key}", swin[name])
    values: dict[str, Any] = dict(
        name=f"golden-{bundle.get('official_config', '?')}",
        backbone_kwargs=swin,
        pixel_decoder_layers=sizes.get("MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS", base.pixel_decoder_layers),
        # The official DEC_LAYERS counts the prediction on the learned queries as a layer.
        decoder_layers=sizes.get("MODEL.MASK_FORMER.DEC_LAYERS", base.decoder_layers + 1) - 1,
        dim_feedforward=sizes.get("MODEL.MASK_FORMER.DIM_FEEDFORWARD", base.dim_feedforward),
        num_queries=inference["num_queries"],
        short_edge=sizes.get("INPUT.MIN_SIZE_TEST", base.short_edge),
        num_classes=inference["num_classes"],
        class_head="zero_shot" if inference["clip_classifier_zero_shot"] else "linear",
        clip_len_infer=inference["inference_clip_len"],
        tracker=_TRACKERS[inference["tracker"]],
        t_match=inference["topk_matching_num_t(memory)"],
        k_match=inference["topk_matching_num_k"],
        caption_threshold=inference["captioning_thresh"],
        caption_mode=("weighted-mean" if inference["aggregation_method"] == "weighted mean" else "mean")
        if inference["multi_frame_captioning(aggregation)"] else "best",
        t_agg=inference["aggregation_num_t"],
        presence_threshold=inference["presence_threshold_box_mode"],
        top_k_tracks=inference["topk_tracks_mask_mode"],
        hysteresis=(inference["hysteresis"]["t_low"], inference["hysteresis"]["t_high"],
                    inference["hysteresis"]["min_duration"]) if inference["hysteresis"]["enabled"] else None,
        per_frame_score_threshold=inference["per_frame_score_threshold"],
        num_query_tokens=inference["num_text_queries"],
        max_caption_tokens=inference["max_txt_len"],
        num_beams=inference["generation"]["num_beams"],
        max_caption_length=inference["generation"]["max_length"],
    )
    vision = dict(base.caption_vision_kwargs, image_size=inference["eva_img_size"])
    if "eva_vit" in outside:
        eva = outside["eva_vit"]["golden"]
        vision.update(hidden_size=eva["embed_dim"], num_hidden_layers=eva["depth"],
                      num_attention_heads=eva["num_heads"], patch_size=eva["patch_size"],
                      intermediate_size=int(eva["embed_dim"] * eva["mlp_ratio"]))
    values["caption_vision_kwargs"] = vision
    if "qformer_bert" in outside:
        bert = outside["qformer_bert"]
        values.update(qformer_hidden=bert["golden"]["hidden_size"], qformer_layers=bert["golden"]["num_hidden_layers"],
                      qformer_heads=bert["golden"]["num_attention_heads"],
                      qformer_intermediate=bert["golden"]["intermediate_size"],
                      qformer_cross_attention_frequency=bert["cross_attention_freq"])
    if isinstance(outside.get("opt", {}).get("golden"), dict):
        values["lm_kwargs"] = dict(outside["opt"]["golden"])
    return dataclasses.replace(base, **values)


@dataclass
class StageDiff:
    """The largest difference of one compared stage; ``exact`` stages must be equal."""

    stage: str
    difference: float
    exact: bool = False
    note: bool = False  # reported, never failing (rounding ties)

    def ok(self, tolerance: float) -> bool:
        if self.note:
            return True
        return self.difference == 0 if self.exact else self.difference <= tolerance


def _diff(ours: torch.Tensor | None, theirs: torch.Tensor) -> float:
    if ours is None or tuple(ours.shape) != tuple(theirs.shape):
        return float("inf")
    ours = ours.detach().cpu()
    if ours.dtype == torch.bool or not ours.is_floating_point():
        return float((ours.long() != theirs.long()).sum())
    return float((ours.double() - theirs.double()).abs().max()) if ours.numel() else 0.0


def compare(trace: Trace, golden: dict[str, Any]) -> list[StageDiff]:
    """Every stage the bundle holds against our trace of the same run."""
    rows: list[StageDiff] = []

    def add(stage: str, ours, theirs, *, exact: bool = False) -> None:
        previous = next((r for r in rows if r.stage == stage), None)
        value = _diff(ours, theirs)
        if previous is None:
            rows.append(StageDiff(stage, value, exact))
        else:
            previous.difference = max(previous.difference, value)

    values = trace.values
    add("preprocess: images_tensor", values["images_tensor"], golden["images_tensor"])
    for index, clip in enumerate(golden["clips"]):
        ours = values["clips"][index]
        for level, tensor in clip.get("backbone", {}).items():
            add(f"backbone {level}", ours["backbone"].get(level), tensor)
        for k, tensor in enumerate(clip.get("pixel_decoder_multi_scale", [])):
            add(f"pixel decoder level {k}", ours["pixel_decoder_multi_scale"][k], tensor)
        if "pixel_decoder_mask_features" in clip:
            add("pixel decoder mask features", ours["pixel_decoder_mask_features"], clip["pixel_decoder_mask_features"])
        for k, layer in enumerate(clip["per_layer"]):
            for key, tensor in layer.items():
                add(f"decoder layer {k}: {key}", ours["per_layer"][k][key], tensor)
        last = ours["per_layer"][-1]
        add("decoder: pred_logits", last["pred_logits"], clip["pred_logits"])
        add("decoder: pred_object_logits", last["pred_object_logits"], clip["pred_object_logits"])
        for key in ("pred_boxes", "pred_masks"):
            if key in clip:
                add(f"decoder: {key}", last[key], clip[key])
        add("decoder: pred_queries (raw)", ours["pred_queries"], clip["pred_queries"])
        add("decoder: pred_embds", ours["pred_embds"], clip["pred_embds"])
    add("tracker: track_permutations", values["track_permutations"], golden["track_permutations"], exact=True)
    add("clip scores S", values["clip_scores_S"], golden["clip_scores_S"])
    captioned = torch.tensor([i for i, ids in enumerate(trace.values["caption_ids"]) if ids is not None],
                             dtype=torch.long)
    add("captioned tracks", captioned, golden["captioned_query_ids"], exact=True)
    traces = {t.track: t for t in values.get("caption_traces", [])}
    for entry in golden["captions"]:
        record = traces.get(int(entry["query_id"]))
        if record is None:
            add("caption: output_ids", None, entry["output_ids"], exact=True)
            continue
        add("caption: Q-Former attention mask", torch.stack([c.attention_mask for c in record.calls]),
            entry["qformer_encoder_attention_mask"], exact=True)
        if "aggregation_scores" in entry:
            add("caption: aggregation scores", record.clip_scores, entry["aggregation_scores"])
        if "qformer_query_embeds" in entry:
            add("caption: Q-Former query embeds", record.calls[0].query_embeds, entry["qformer_query_embeds"])
            add("caption: Q-Former outputs", torch.stack([c.output for c in record.calls]),
                entry["qformer_last_hidden_state"])
            add("caption: EVA input", record.calls[0].image, entry["eva_input_first"])
            unique = []
            for call in record.calls:
                if not any(call.frame == u.frame for u in unique):
                    unique.append(call)
            add("caption: EVA + ln_vision", torch.stack([c.image_features for c in unique]),
                entry["eva_ln_vision_output_unique"])
        add("caption: OPT inputs_embeds", record.lm_inputs, entry["opt_inputs_embeds"])
        add("caption: output_ids", record.token_ids, entry["output_ids"], exact=True)
    result = values["result"]
    final = golden["final"]
    add("final: scores", torch.tensor(result.scores, dtype=torch.float64), final["pred_scores"])
    add("final: labels", torch.tensor(result.labels), final["pred_labels"], exact=True)
    add("final: per-frame scores", torch.tensor(result.scores_per_frame, dtype=torch.float64),
        final["pred_scores_per_frame"])
    if result.boxes is not None:
        boxes = torch.tensor([[box if box is not None else [-1] * 4 for box in track] for track in result.boxes])
        boundary = _rounding_boundary(golden, values["track_permutations"], boxes)
        theirs = final["pred_boxes"].clone()
        theirs[boundary] = boxes[boundary]
        add("final: boxes", boxes, theirs, exact=True)
        rows.append(StageDiff("final: boxes 1 px off at a .5 px rounding tie (allowed)",
                              float(boundary.sum()), exact=True, note=True))
    else:
        theirs = torch.from_numpy(np.unpackbits(final["pred_masks_packed"].numpy(), axis=-1,
                                                count=int(final["pred_masks_shape"][-1])).astype(bool))
        ours = result.masks
        tie = _mask_ties(golden, values["track_permutations"], result.tracks, ours, theirs)
        add("final: masks", ours, torch.where(tie, ours, theirs), exact=True)
        rows.append(StageDiff("final: mask pixels flipped at a logit within 1e-4 of 0 (allowed)",
                              float(tie.sum()), exact=True, note=True))
    for ours, theirs in zip(result.caption_ids, final["pred_caption_ids"]):
        add("final: caption ids", torch.tensor(ours, dtype=torch.long), theirs, exact=True)
    if len(result.caption_ids) != len(final["pred_caption_ids"]):
        add("final: caption ids", None, torch.zeros(1), exact=True)
    return rows


def _rounding_boundary(golden: dict[str, Any], permutations: torch.Tensor, boxes: torch.Tensor,
                       *, margin: float = 1e-3) -> torch.Tensor:
    """(N, T, 4) bool: final box values that differ from the golden by 1 px where the
    golden's own unrounded value lies within ``margin`` px of a .5 tie, so that a 1e-7
    difference upstream legitimately rounds the other way."""
    theirs = golden["final"]["pred_boxes"]
    if boxes.shape != theirs.shape:
        return torch.zeros(theirs.shape, dtype=torch.bool)
    padded = torch.tensor(golden["images_tensor"].shape[-2:], dtype=torch.float32)
    unpadded = golden["image_sizes"][0].float()
    original = golden["final"]["image_size"].float()
    scale = (padded / unpadded).flip(0).repeat(2)  # x, y, w, h
    raw = []
    for index, clip in enumerate(golden["clips"]):
        raw.append(clip["pred_boxes"][0][permutations[index]])
    raw = torch.cat(raw, dim=1)  # (N, T, 4)
    pixels = (raw * scale).clamp(0, 1) * original.flip(0).repeat(2)
    near_tie = ((pixels - pixels.floor()) - 0.5).abs() < margin
    return near_tie & ((boxes - theirs).abs() == 1)


def _mask_ties(golden: dict[str, Any], permutations: torch.Tensor, tracks: list[int], ours: torch.Tensor,
               theirs: torch.Tensor, *, margin: float = 1e-4) -> torch.Tensor:
    """(N, T, H, W) bool: mask pixels that differ from the golden where the golden's own
    output logit is within ``margin`` of 0 (a 1e-6 difference upstream flips them)."""
    if ours.shape != theirs.shape:
        return torch.zeros(theirs.shape, dtype=torch.bool)
    differ = ours != theirs
    if not differ.any():
        return differ
    tracked = torch.cat([clip["pred_masks"][0][permutations[i]] for i, clip in enumerate(golden["clips"])], dim=1)
    sizes = dict(padded_size=tuple(golden["images_tensor"].shape[-2:]),
                 image_size=tuple(golden["image_sizes"][0].tolist()), output_size=tuple(theirs.shape[-2:]))
    tie = torch.zeros_like(differ)
    for n in differ.flatten(1).any(dim=1).nonzero().flatten().tolist():
        logits = output_mask_logits(tracked[tracks[n]], **sizes)
        tie[n] = differ[n] & (logits.abs() < margin)
    return tie


def check_bundle(path: str | Path, *, tolerance: float = 1e-5, device: str = "cpu",
                 autocast: bool = False) -> tuple[bool, list[StageDiff]]:
    """Convert, build, run and compare one bundle; returns (passed, rows).

    ``device="cuda"`` checks CPU-vs-GPU agreement: float32 with TF32 off by default, or the
    official fp16 autocast with ``autocast=True`` (expect differences far above 1e-5 then)."""
    path = Path(path)
    bundle = json.loads((path / "config.json").read_text())
    config = config_from_bundle(bundle)
    inputs = torch.load(path / "input.pt", weights_only=True)
    golden = torch.load(path / "outputs.pt", weights_only=True)
    state = torch.load(path / "state_dict.pt", weights_only=True)
    model = MaskCaptioner(config=config)
    model.load_state_dict(model.official_state_dict(state))
    model.to(device).eval()
    if torch.device(device).type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    video = inputs["video_uint8_THWC"].numpy()
    trace = Trace(stage_clips=set(bundle.get("stage_features_saved_for_clips", [])))
    torch.manual_seed(int(bundle.get("seeds", {}).get("forward_global_torch_seed", 1234)))
    features = inputs.get("clip_image_features") if config.class_head == "zero_shot" else None
    run_video(model, lambda positions: video[positions], num_frames=len(video),
              clip_features=features, trace=trace, autocast=autocast)
    rows = compare(trace, golden)
    return all(r.ok(tolerance) for r in rows), rows


def print_report(rows: list[StageDiff], *, tolerance: float) -> None:
    """A rich table: stage, largest difference, pass/fail."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"golden check (tolerance {tolerance:g}; exact stages must be equal)")
    table.add_column("stage")
    table.add_column("max |diff|", justify="right")
    table.add_column("", justify="center")
    for row in rows:
        value = f"{int(row.difference)} differ" if row.exact and np.isfinite(row.difference) else f"{row.difference:.2e}"
        verdict = "note" if row.note else "ok" if row.ok(tolerance) else "[red]FAIL[/red]"
        table.add_row(row.stage, value, verdict)
    Console().print(table)
