"""The declarative track registry: benchmark x split x IoU type, with GT path and protocol.

Tracks are defined in ``tracks.yaml`` (next to this module) or in any YAML file of the same
shape named by ``$LEADERBOARD_TRACKS`` or passed to :func:`load_tracks`.

Example:
    >>> tracks = load_tracks()
    >>> tracks["vidstg-val-box"].chota_kwargs()["caption_metrics"]
    ('cider', 'meteor', 'spice')
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import yaml

from benchmark.errors import InputError

DEFAULT_REGISTRY = Path(__file__).with_name("tracks.yaml")
# The folder that holds the `benchmark` and `leaderboard` packages (source tree or
# site-packages): "pkg:" paths in the registry are relative to it.
PACKAGE_ROOT = Path(__file__).resolve().parent.parent
IOU_TYPES = ("box", "mask")


@dataclasses.dataclass(frozen=True)
class Track:
    """One ranking: a ground-truth file scored under one protocol with one IoU type.

    Example:
        >>> t = Track(name="demo-box", benchmark="demo", split=None, iou="box",
        ...           gt=Path("gt.json"), protocol_name="official", alphas=(0.5,),
        ...           caption_metrics=("cider",), score_threshold=0.5, title="Demo")
        >>> t.chota_kwargs()["iou"]
        'box'
    """

    name: str
    benchmark: str
    split: str | None
    iou: str
    gt: Path
    protocol_name: str
    alphas: tuple[float, ...]
    caption_metrics: tuple[str, ...]
    score_threshold: float
    title: str
    rank_by: str = "CHOTA"

    def chota_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``benchmark.chota`` for this track's protocol."""
        return {
            "iou": self.iou,
            "alphas": self.alphas,
            "caption_metrics": self.caption_metrics,
            "score_threshold": self.score_threshold,
            "protocol": "reference",
        }

    def protocol_record(self) -> dict[str, Any]:
        """The protocol as stored with every scored entry (JSON-serialisable)."""
        return {"name": self.protocol_name, **self.chota_kwargs(), "alphas": list(self.alphas),
                "caption_metrics": list(self.caption_metrics)}

    def require_gt(self) -> Path:
        """The GT path, or an ``InputError`` that says how to provide it."""
        if not self.gt.exists():
            raise InputError(f"the ground truth of track {self.name!r} is not installed: expected "
                             f"{self.gt} (set $DVOC_DATA to the folder that holds it)",
                             source=str(self.gt))
        return self.gt

    def with_gt(self, gt: str | os.PathLike[str]) -> "Track":
        """The same track scored against another GT file (challenge hosts pass their own)."""
        return dataclasses.replace(self, gt=Path(gt))


def _data_root() -> Path:
    return Path(os.environ.get("DVOC_DATA", "data"))


def _resolve_gt(raw: str, registry: Path) -> Path:
    if raw.startswith("pkg:"):
        return PACKAGE_ROOT / raw[len("pkg:"):]
    path = Path(raw)
    if path.is_absolute():
        return path
    if raw.startswith("./") or raw.startswith("../"):
        # Explicitly relative: to the registry file, so test registries can ship their GT.
        return (registry.parent / path).resolve()
    return _data_root() / path


def load_tracks(path: str | os.PathLike[str] | None = None) -> dict[str, Track]:
    """Read a track registry; returns tracks by name, in file order.

    ``path`` defaults to ``$LEADERBOARD_TRACKS`` or the bundled ``tracks.yaml``.

    Example:
        >>> sorted(load_tracks())[:2]
        ['bensmot-val-box', 'lvviscap-val-box']
    """
    registry = Path(path or os.environ.get("LEADERBOARD_TRACKS") or DEFAULT_REGISTRY)
    source = str(registry)
    try:
        doc = yaml.safe_load(registry.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read the track registry: {exc.strerror}", source=source) from exc
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML: {exc}", source=source) from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("tracks"), list):
        raise InputError("expected a mapping with a 'tracks' list", source=source)
    protocols = doc.get("protocols") or {}
    tracks: dict[str, Track] = {}
    for index, spec in enumerate(doc["tracks"]):
        if not isinstance(spec, dict):
            raise InputError("expected a mapping", source=source, record=index)
        for key in ("benchmark", "iou", "gt", "protocol"):
            if key not in spec:
                raise InputError("missing", source=source, record=index, field=key)
        protocol = protocols.get(spec["protocol"])
        if not isinstance(protocol, dict):
            raise InputError(f"unknown protocol {spec['protocol']!r}; defined: "
                             f"{sorted(protocols)}", source=source, record=index, field="protocol")
        ious = spec["iou"] if isinstance(spec["iou"], list) else [spec["iou"]]
        for iou in ious:
            if iou not in IOU_TYPES:
                raise InputError(f"iou must be one of {IOU_TYPES}, got {iou!r}",
                                 source=source, record=index, field="iou")
            split = spec.get("split")
            name = "-".join(str(part) for part in (spec["benchmark"], split, iou) if part)
            if name in tracks:
                raise InputError(f"track {name!r} is defined twice", source=source, record=index)
            tracks[name] = Track(
                name=name,
                benchmark=str(spec["benchmark"]),
                split=str(split) if split else None,
                iou=iou,
                gt=_resolve_gt(str(spec["gt"]), registry),
                protocol_name=str(spec["protocol"]),
                alphas=tuple(float(a) for a in protocol.get("alphas", [0.5])),
                caption_metrics=tuple(protocol.get("caption_metrics",
                                                   ["cider", "meteor", "spice"])),
                score_threshold=float(protocol.get("score_threshold", 0.5)),
                title=str(spec.get("title", name)),
                rank_by=str(spec.get("rank_by", "CHOTA")),
            )
    return tracks


def get_track(name: str, tracks: dict[str, Track] | None = None) -> Track:
    """Look a track up by name with a message listing the known ones."""
    tracks = load_tracks() if tracks is None else tracks
    try:
        return tracks[name]
    except KeyError:
        raise InputError(f"unknown track {name!r}; known tracks: {', '.join(tracks)}",
                         field="track") from None
