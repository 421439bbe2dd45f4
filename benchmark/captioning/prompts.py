"""Prompt text for synthetic object captions (MaskCaptioner's LVISCap / LV-VISCap recipe).

The request for one object is: a static system prompt (task, rules, output format, an
example), optional few-shot turns, and a per-object user prompt holding the visual prompt
(the sampled frames) and the textual cues that MaskCaptioner's Table 1 found useful: box
coordinates, area, the object's category and the other objects' categories.

Three visual prompts exist: ``"boxes"`` (MaskCaptioner: the object's box drawn on each frame),
``"contour"`` (VoCap's views: a red contour around the mask and a blurred background, with our
cue-based prompt) and ``"vocap"`` (the same views with VoCap's own Gemini prompt, verbatim,
and nothing else; its answers follow VoCap's FORMAT and are parsed by
:func:`benchmark.captioning.validate.parse_vocap_answer`). Each has its own system prompt
(none for ``"vocap"``, which sends its one prompt as the user turn, as VoCap does).

Any change to the text below changes the captions, so it must bump ``PROMPT_VERSION``: the
version is part of the cache key, and a bump makes a rerun ask again instead of mixing
captions written under two prompts.

Example:
    >>> from benchmark.captioning.prompts import user_prompt
    >>> print(user_prompt(category="dog", boxes_xyxy=[(1, 2, 30, 40)], area_fraction=0.05,
    ...                   others=("person",), image_size=(64, 48)))
    Category of the queried object: dog
    Frame size: 64 x 48 pixels.
    Box of the queried object in each frame, as [x_min, y_min, x_max, y_max] in pixels:
    - frame 1: [1, 2, 30, 40]
    Area of the queried object: 5.0% of the frame on average.
    Other objects annotated in the video: person.
"""

from __future__ import annotations

from typing import Sequence

PROMPT_VERSION = "v1"

VISUAL_PROMPTS = ("boxes", "contour", "vocap")

_EXAMPLE = """Example of a user message and the expected answer:
Category of the queried object: dog
Frame size: 768 x 432 pixels.
Box of the queried object in each frame, as [x_min, y_min, x_max, y_max] in pixels:
- frame 1: [102, 210, 260, 380]
- frame 2: [240, 200, 410, 372]
- frame 3: [395, 190, 560, 365]
- frame 4: [520, 120, 690, 300]
Area of the queried object: 8.2% of the frame on average.
Other objects annotated in the video: person, frisbee.
Answer: A small brown dog runs across the lawn and leaps to catch a red frisbee thrown by a man."""

_RULES_COMMON = """- Describe only the queried object. Mention other objects or people only to place it in the scene or to describe an interaction with it.
- Use the given category to identify the object; you may use a more precise or more common name for it.
- A small area for a kind of object that is usually large means that it is far away, in the background or partly hidden.
- Describe only what is visible: appearance (colour, size, material, clothing, shape), then what the object does over the frames, or its position in the scene if it does not move.
- Do not guess names, identities, emotions or intentions.
- Never mention the frames, the images, the video, the coordinates, the area or the category list."""

_FORMAT = """Output format: exactly one English sentence of 8 to 30 words that starts with "A", "An" or "The" and ends with a period. Write nothing before or after the sentence."""

SYSTEM_PROMPTS = {
    "boxes": f"""You write captions of single objects in videos for a dense video object captioning dataset.

You receive up to 4 frames sampled uniformly from a video, in temporal order. In each frame, one object, the queried object, is marked by a red rectangle. The text gives the category of the queried object, its box in each frame, its area and the categories of the other annotated objects.

Task: write one caption describing the queried object: what it is, what it looks like, and what it does or how it relates to the scene across the frames.

Rules:
{_RULES_COMMON}
- Never mention the red rectangle, a box, a bounding box, a marker or a highlight.

{_FORMAT}

{_EXAMPLE}""",
    "contour": f"""You write captions of single objects in videos for a dense video object captioning dataset.

You receive up to 4 frames sampled uniformly from a video, in temporal order. In each frame, one object, the queried object, is outlined by a red contour and everything outside the contour is blurred. The text gives the category of the queried object, its box in each frame, its area and the categories of the other annotated objects.

Task: write one caption describing the queried object: what it is, what it looks like, and what it does or how it relates to the scene across the frames. If the object is a part of a larger object, describe that part.

Rules:
{_RULES_COMMON}
- Do not describe the blurred background beyond what is needed to place the object.
- Never mention the red contour, an outline, the blur, a marker or a highlight.

{_FORMAT}

{_EXAMPLE}""",
    "vocap": "",  # VoCap sends its prompt (VOCAP_PROMPT) with the frames, no system prompt
}


# VoCap's Gemini prompt, verbatim (Uijlings et al. 2025, appendix A.2, "Text prompt to generate
# SAV-Caption-train"), quote characters as printed (U+2019, and U+2018 before the refusal). It
# comes with the contour views (red contour, blurred background) and nothing else: no system
# prompt, no category or box cues. The answer follows its FORMAT; parse_vocap_answer reads it.
VOCAP_PROMPT = (
    "Describe the subject in the red contour in the following video. If the subject is a part of an "
    "object, please describe this part instead of the whole object. Please DO NOT DESCRIBE anything "
    "in the blurred background outside the red contour. First determine the subject\u2019s category "
    "(CATEGORY), properties (PROPERTIES), action (ACTION), and then give a description in ONE "
    "sentence (DESCRIPTION) including category, properties, and action, etc.. Please use this "
    "FORMAT: \u2019The video shows a CATEGORY. The subject\u2019s properties are PROPERTIES. The subject\u2019s "
    "action is ACTION. DESCRIPTION.\u2019. The DESCRIPTION starts with \u2019A/ An CATEGORY\u2019 or \u2019A/ An "
    "PROPERTIES CATEGORY\u2019 if it is grammarly more proper to put the properties before the category. "
    "The category, properties, motion and the descriptions should be consistent. PROPERTIES should "
    "be about the objects appearance (color, texture, size, material, shape), what it is wearing or "
    "a functional property (e.g. fast, sharp). Please always include interesting or unexpected "
    "properties. If there are multiple actions happening sequentially, connect them with \u2019then\u2019, "
    "but do not include more than 3 actions. For static objects or parts, just say the ACTION is "
    "\u2019static\u2019 and it is OK to not include ACTION in DESCRIPTION. Please DO NOT mention the red "
    "contour in the description. If the subject is a person, please avoid describing the person\u2019s "
    "skin color and describe the person\u2019s clothes color instead. You only need to describe the "
    "details that you are certain about. If you cannot perform the task or you are very uncertain, "
    "please say \u2018I cannot perform the task for this video.\u2019."
)


def user_prompt(
    *,
    category: str | None,
    boxes_xyxy: Sequence[Sequence[float]],
    area_fraction: float,
    others: Sequence[str],
    image_size: tuple[int, int],
) -> str:
    """The per-object prompt; boxes are in the pixel frame of the images sent (``image_size`` =
    width, height), one per sampled frame in the order the frames are sent."""
    lines = []
    if category:
        lines.append(f"Category of the queried object: {category}")
    lines.append(f"Frame size: {image_size[0]} x {image_size[1]} pixels.")
    lines.append("Box of the queried object in each frame, as [x_min, y_min, x_max, y_max] in pixels:")
    for i, box in enumerate(boxes_xyxy, 1):
        lines.append(f"- frame {i}: [{', '.join(str(int(round(v))) for v in box)}]")
    lines.append(f"Area of the queried object: {100 * area_fraction:.1f}% of the frame on average.")
    lines.append(f"Other objects annotated in the video: {', '.join(others) if others else 'none'}.")
    return "\n".join(lines)
