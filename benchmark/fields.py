"""The result fields of CHOTA, declared once; tables, JSON, CSV and plots are generated from here.

Names are the reference scorer's, so JSON written by this package can be compared key by key
with published or reference outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

OFFICIAL_CAPTION_METRICS: tuple[str, ...] = ("cider", "meteor", "spice")


@dataclass(frozen=True)
class Field:
    """One reported quantity: ``kind`` is "count" (summed) or "score" (a ratio in [0, 1],
    CIDEr on its x10 scale)."""

    name: str
    kind: str
    description: str


TRACKING_FIELDS: tuple[Field, ...] = (
    Field("HOTA", "score", "sqrt(DetA * AssA): detection and association together"),
    Field("DetA", "score", "detection accuracy TP / (TP + FN + FP)"),
    Field("AssA", "score", "association accuracy over true positives"),
    Field("DetRe", "score", "detection recall TP / (TP + FN)"),
    Field("DetPr", "score", "detection precision TP / (TP + FP)"),
    Field("AssRe", "score", "association recall"),
    Field("AssPr", "score", "association precision"),
    Field("LocA", "score", "mean IoU of true positives"),
    Field("OWTA", "score", "sqrt(DetRe * AssA), open-world tracking accuracy"),
)
COUNT_FIELDS: tuple[Field, ...] = (
    Field("HOTA_TP", "count", "true positives (matched boxes/masks)"),
    Field("HOTA_FN", "count", "false negatives (missed ground truth)"),
    Field("HOTA_FP", "count", "false positives (unmatched predictions)"),
    Field("TP_with_caps", "count", "true positives whose ground truth has a caption"),
)


def caption_fields(metrics: tuple[str, ...]) -> tuple[Field, ...]:
    """The caption fields for the metrics used: CapA, CHOTA, then CapA-<metric> each."""
    if not metrics:
        return ()
    return (
        Field("CHOTA", "score", "(DetA * AssA * CapA) ** (1/3)"),
        Field("CapA", "score", "mean of the CapA-<metric> (no rescaling: CIDEr is x10)"),
        *(Field(f"CapA-{m}", "score", f"mean {m.upper()} over captioned true positives")
          for m in metrics),
    )


def result_fields(metrics: tuple[str, ...]) -> tuple[Field, ...]:
    """Every field of a result, in display order."""
    return (*caption_fields(metrics)[:2], *TRACKING_FIELDS, *caption_fields(metrics)[2:],
            *COUNT_FIELDS)
