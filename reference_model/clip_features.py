"""Per-frame CLIP image features for the official zero-shot class head (LV-VIS, VidSTG).

The released LV-VIS and VidSTG checkpoints classify each query by cross-attending to the
CLIP ViT-B/32 image embedding of every frame of the clip. The official code does not compute
them: it reads a file made once per split by ``tools/data_prep/vidstg/save_clip_features.py``
or ``tools/data_prep/lviscap_lvviscap/save_lvvis_clip_features.py`` (gabfstr/CaptionFormer),
named ``*_clip_feature.pkl`` although ``torch.save`` wrote it. It holds a dict from a frame's
path, as the script built it (``os.path.join(image_dir, name)``, e.g.
``./datasets/LVVIS/val/JPEGImages/00000/00000.jpg``), to the (1, 512) output of openai-clip's
``encode_image``: not L2-normalised, float16 when the script ran on a GPU (openai-clip keeps
its fp16 weights there), float32 on CPU. At inference the official code looks a frame up by
its file name from the first ``datasets/`` on (:func:`official_key`).

This module reads those files without running pickled code (:func:`load_feature_file`),
finds a video's frames in them (:meth:`FrameFeatures.for_frames`, also when our ground
truth names frames differently), and computes the features for frames the file lacks with a
local transformers CLIP folder (:class:`ClipImageEncoder`, :func:`save_feature_file`).

Example:
    >>> import torch
    >>> features = FrameFeatures.from_mapping({
    ...     "./datasets/LVVIS/val/JPEGImages/00007/00000.jpg": torch.ones(1, 512),
    ...     "./datasets/LVVIS/val/JPEGImages/00007/00001.jpg": torch.zeros(1, 512)})
    >>> features.for_frames(["00007/00001.jpg", "00007/00000.jpg"])[:, 0]
    tensor([0., 1.])
    >>> official_key("/data/CaptionFormer/datasets/VidSTG/video/0000/2401075277/0001.jpg")
    'datasets/VidSTG/video/0000/2401075277/0001.jpg'
"""

from __future__ import annotations

import collections
import io
import pickle
import posixpath
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm import tqdm

from benchmark.atomic import atomic_stream, check_output_path
from benchmark.errors import InputError

if TYPE_CHECKING:
    from reference_model.data import VideoSource

# The width of CLIP ViT-B/32's joint embedding: the zero-shot classifier's cross-attention
# (``ZeroShotClassifier``, zs_weight_dim 512) reads vectors of exactly this size.
FEATURE_DIM = 512
# openai-clip's ``_transform``: Normalize((0.48145466, ...), (0.26862954, ...)) on [0, 1].
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

_NUMPY_RECONSTRUCT = np.zeros(1).__reduce__()[0]
# Every global a feature file may name: tensor and ndarray reconstruction, nothing that can
# reach the file system, a shell or an import. Numpy 1 and 2 name ``_reconstruct`` differently.
_NUMPY_GLOBALS = {
    "numpy.core.multiarray._reconstruct": _NUMPY_RECONSTRUCT,
    "numpy._core.multiarray._reconstruct": _NUMPY_RECONSTRUCT,
    "numpy.ndarray": np.ndarray,
    "numpy.dtype": np.dtype,
}


def _load_storage_bytes(data: bytes) -> Any:
    # A tensor written with plain ``pickle.dump`` carries its storage as a nested torch.save
    # archive that torch's own ``_load_from_bytes`` opens with weights_only=False; this opens
    # it with the tensor-only unpickler, on the CPU (the official files were written on a GPU).
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


_PICKLE_GLOBALS = {
    "torch._utils._rebuild_tensor_v2": torch._utils._rebuild_tensor_v2,
    "torch.storage._load_from_bytes": _load_storage_bytes,
    "collections.OrderedDict": collections.OrderedDict,  # a tensor's (empty) backward hooks
    **_NUMPY_GLOBALS,
}


# torch.load(weights_only=True) also wants the dtype classes of the arrays it builds.
_TORCH_SAFE_GLOBALS = [(obj, name) for name, obj in _NUMPY_GLOBALS.items()] + [
    type(np.dtype(name)) for name in ("float16", "float32", "float64")]


class _Refused(pickle.UnpicklingError):
    """A pickle named a global outside ``_PICKLE_GLOBALS``."""


class _TensorUnpickler(pickle.Unpickler):
    """Unpickler that builds only containers, tensors and arrays."""

    def find_class(self, module: str, name: str) -> Any:
        target = _PICKLE_GLOBALS.get(f"{module}.{name}")
        if target is None:
            raise _Refused(f"it names {module}.{name}")
        return target


def _read_object(path: Path) -> Any:
    """The object a feature file holds, without running code from it."""
    torch_format = zipfile.is_zipfile(path)
    try:
        if not torch_format:
            with open(path, "rb") as handle:
                data = _TensorUnpickler(handle).load()
            # torch.save's legacy (pre-1.6) format is several pickles that start with this number.
            torch_format = isinstance(data, int) and data == torch.serialization.MAGIC_NUMBER
        if torch_format:
            with torch.serialization.safe_globals(_TORCH_SAFE_GLOBALS):
                data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = str(exc) if isinstance(exc, _Refused) else _torch_refusal(path, str(exc))
        if reason is None:
            raise InputError(f"not a readable pickle or torch file: {exc}", source=str(path)) from None
        raise InputError(f"refusing to load: the file holds more than tensors and arrays ({reason})",
                         source=str(path)) from None
    except (EOFError, RuntimeError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise InputError(f"not a readable pickle or torch file: {exc}", source=str(path)) from None
    return data


def _torch_refusal(path: Path, message: str) -> str | None:
    """Why torch.load(weights_only=True) refused the file, in one line (None: it did not)."""
    if "Weights only load failed" not in message:
        return None
    if zipfile.is_zipfile(path):
        names = [n for n in torch.serialization.get_unsafe_globals_in_checkpoint(path) if n not in _PICKLE_GLOBALS]
        if names:
            return "it names " + ", ".join(names)
    # The explanation is the first line after torch's advice on weights_only.
    lines = [line.strip() for line in message.splitlines()[1:]]
    return next((line for line in lines if line and not line.startswith(("Please file", "Check the documentation"))),
                "objects other than tensors")


def official_key(name: str) -> str:
    """The key the official code looks a frame up with: its file name from the first
    ``datasets/`` on (the name itself, path-normalised, when it has none).

    Example:
        >>> official_key("./datasets/LVVIS/val/JPEGImages/00000/00000.jpg")
        'datasets/LVVIS/val/JPEGImages/00000/00000.jpg'
        >>> official_key("00000/00000.jpg")
        '00000/00000.jpg'
    """
    _, marker, tail = posixpath.normpath(name).partition("datasets/")
    return marker + tail if marker else posixpath.normpath(name)


def vidstg_frame_key(file_name: str) -> str:
    """Our VidSTG frame name (``benchmark.datasets.vidstg``: ``<vid>/<VidOR frame:05d>.jpg``,
    0-based) as the official frame folders name it (ffmpeg ``%04d.jpg``, 1-based: the official
    scripts pair VidOR trajectory ``i`` with ``<i + 1>.jpg``). The result matches an official
    key (``.../<folder>/<vid>/0013.jpg``) by path suffix.

    Example:
        >>> vidstg_frame_key("2401075277/00012.jpg")
        '2401075277/0013.jpg'
    """
    folder, _, base = file_name.rpartition("/")
    stem, dot, ext = base.partition(".")
    if not stem.isdigit():
        raise InputError("not a VidSTG frame name <vid>/<frame>.jpg", source=file_name)
    return f"{folder}/{int(stem) + 1:04d}{dot}{ext}" if folder else f"{int(stem) + 1:04d}{dot}{ext}"


def _feature_row(value: Any, *, key: str, source: str, dim: int) -> torch.Tensor:
    """One stored value as a (dim,) float32 CPU tensor, or an error naming the key."""
    if isinstance(value, np.ndarray):
        if not np.issubdtype(value.dtype, np.floating):
            raise InputError(f"the feature is a {value.dtype} array, expected floats", source=source, record=key)
        value = torch.from_numpy(np.ascontiguousarray(value))
    if not torch.is_tensor(value):
        raise InputError(f"the feature is a {type(value).__name__}, expected a tensor", source=source, record=key)
    if not value.is_floating_point():
        raise InputError(f"the feature is a {value.dtype} tensor, expected floats", source=source, record=key)
    if tuple(value.shape) not in ((1, dim), (dim,)):
        raise InputError(f"the feature has shape {tuple(value.shape)}, expected (1, {dim}) or ({dim},)",
                         source=source, record=key)
    row = value.detach().to("cpu", torch.float32).reshape(dim)
    if not torch.isfinite(row).all():
        raise InputError("the feature has NaN or infinite values", source=source, record=key)
    return row


def _parts(name: str) -> tuple[str, ...]:
    return tuple(p for p in posixpath.normpath(name).split("/") if p not in ("", "."))


@dataclass
class FrameFeatures:
    """CLIP image features of named frames: ``matrix[i]`` belongs to ``names[i]``."""

    names: tuple[str, ...]
    matrix: torch.Tensor  # (N, 512) float32
    source: str = "<memory>"
    # Official LVIS / COCO files key images by their integer id (names are then str(id)).
    keyed_by_image_id: bool = False
    # Lookup indices, built on first use: a training split holds millions of frames and most
    # lookups hit the exact name.
    _exact: dict[str, int] = field(init=False, repr=False)
    _official: dict[str, list[int]] | None = field(init=False, repr=False, default=None)
    _by_tail: dict[tuple[str, ...], list[int]] | None = field(init=False, repr=False, default=None)
    _by_base: dict[str, list[int]] | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        self._exact = {name: i for i, name in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def from_mapping(cls, data: Any, *, source: str = "<memory>", dim: int = FEATURE_DIM) -> FrameFeatures:
        """Check an official-layout dict ({frame path: (1, dim) or (dim,) float tensor or
        array}, or {image id: ...} as the official LVIS files) and stack it; every problem is
        an error that names ``source`` and the key."""
        if not isinstance(data, Mapping):
            raise InputError(f"expected a dict {{frame path: feature}}, found a {type(data).__name__}", source=source)
        if not data:
            raise InputError("the file holds no features", source=source)
        by_id = all(isinstance(key, int) and not isinstance(key, bool) for key in data)
        names, rows = [], []
        for key, value in data.items():
            if by_id:
                name = str(key)
            elif not isinstance(key, str) or not key:
                mixed = " (the file mixes image ids and frame paths)" if isinstance(key, int) else ""
                raise InputError(f"keys must be frame paths or image ids, found {key!r}{mixed}", source=source)
            else:
                name = key
            names.append(name)
            rows.append(_feature_row(value, key=name, source=source, dim=dim))
        return cls(names=tuple(names), matrix=torch.stack(rows), source=source, keyed_by_image_id=by_id)

    def for_images(self, images: Sequence[Mapping[str, Any]], *, source: str = "<memory>") -> torch.Tensor:
        """(T, 512) float32 features of image records (ground-truth ``images`` entries): by
        ``id`` in a file keyed by image id, else by ``file_name`` (see :meth:`for_frames`).

        Example:
            >>> features = FrameFeatures.from_mapping({7: torch.ones(512)})
            >>> features.for_images([{"id": 7, "file_name": "a/b.jpg"}]).shape
            torch.Size([1, 512])
        """
        return self.matrix[self.image_rows(images, source=source)]

    def image_rows(self, images: Sequence[Mapping[str, Any]], *, source: str = "<memory>") -> torch.Tensor:
        """Rows of ``matrix`` holding the features of ``images`` (see :meth:`for_images`)."""
        if self.keyed_by_image_id:
            missing = [im.get("id") for im in images if str(im.get("id")) not in self._exact]
            if missing:
                raise InputError(f"no CLIP feature for image id {missing[0]!r} among {len(self)} images keyed by "
                                 f"id such as {self.names[0]}", source=self.source)
            return torch.tensor([self._exact[str(im["id"])] for im in images], dtype=torch.long)
        names = []
        for im in images:
            name = im.get("file_name")
            if not isinstance(name, str) or not name:
                raise InputError("image record has no file_name to find its CLIP feature by", source=source,
                                 record=im.get("id"), field="file_name")
            names.append(name)
        return torch.tensor([self._position(name) for name in names], dtype=torch.long)

    def for_frames(self, file_names: Sequence[str]) -> torch.Tensor:
        """(T, 512) float32 features of a video's frames, in the order given.

        A name matches a stored key when it is equal to it; else when both agree from the first
        ``datasets/`` on, as the official code matches; else the key whose path ends the same
        way over the most components wins, provided they share at least folder and file name
        (or the whole name or key when it is a bare file name): ``00007/00000.jpg`` finds
        ``./datasets/LVVIS/val/JPEGImages/00007/00000.jpg``. A frame with no match, or with
        several equally good ones, is an error naming it and the file.
        """
        return self.matrix[torch.tensor([self._position(name) for name in file_names], dtype=torch.long)]

    def _position(self, name: str) -> int:
        position = self._exact.get(name)
        if position is not None:
            return position
        if self._official is None:
            self._official = collections.defaultdict(list)
            for i, key in enumerate(self.names):
                self._official[official_key(key)].append(i)
        found = self._official.get(official_key(name), [])
        if not found:
            found = self._by_suffix(name)
        if len(found) > 1:
            keys = ", ".join(repr(self.names[i]) for i in found[:3])
            raise InputError(f"frame {name!r} matches several stored frames equally well ({keys}); "
                             "give frame names with more of their path", source=self.source)
        if not found:
            raise InputError(f"no CLIP feature for frame {name!r} (looked up as {official_key(name)!r} and by "
                             f"path suffix) among {len(self)} frames such as {self.names[0]!r}", source=self.source)
        return found[0]

    def _by_suffix(self, name: str) -> list[int]:
        """Keys sharing the longest path suffix with ``name``: at least folder + file name,
        or all of the shorter path when it has one component."""
        if self._by_tail is None:
            self._by_tail, self._by_base = collections.defaultdict(list), collections.defaultdict(list)
            for i, key in enumerate(self.names):
                parts = _parts(key)
                if parts:
                    self._by_tail[parts[-2:]].append(i)
                    self._by_base[parts[-1]].append(i)
        parts = _parts(name)
        if not parts:
            return []
        if len(parts) == 1:
            candidates = self._by_base.get(parts[0], [])
        else:
            candidates = self._by_tail.get(parts[-2:], []) + self._by_tail.get(parts[-1:], [])
        best, found = 0, []
        for i in candidates:
            key_parts = _parts(self.names[i])
            common = 0
            while common < min(len(parts), len(key_parts)) and parts[-1 - common] == key_parts[-1 - common]:
                common += 1
            if common > best:
                best, found = common, [i]
            elif common == best:
                found.append(i)
        return found


def load_feature_file(path: str | Path, *, dim: int = FEATURE_DIM) -> FrameFeatures:
    """Read an official ``*_clip_feature.pkl`` (torch.save, any torch version), a ``.pt`` with
    the same dict, or a plain ``pickle.dump`` of one (tensors or numpy arrays, fp16 or fp32).

    Nothing in the file runs: pickles may only rebuild tensors and arrays, anything else (a
    class, a function call) is refused with an :class:`InputError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("no such CLIP feature file", source=str(path))
    return FrameFeatures.from_mapping(_read_object(path), source=str(path), dim=dim)


def save_feature_file(path: str | Path, features: Mapping[str, Any], *, overwrite: bool = False) -> Path:
    """Write {frame path: feature} in the official layout ((1, 512) float32 tensors in a
    ``torch.save`` dict), atomically; an existing ``path`` is replaced only with
    ``overwrite=True``. The values are checked as :func:`load_feature_file` checks them.

    For the official code to read the file too, its keys must contain ``datasets/`` (see
    :func:`official_key`); our lookup also matches plain relative names.
    """
    path = check_output_path(path)
    if path.exists() and not overwrite:
        raise InputError("already exists (pass overwrite=True / --overwrite to replace it)", source=str(path))
    checked = FrameFeatures.from_mapping(features, source=f"features to write to {path}")
    data = {name: row[None].clone() for name, row in zip(checked.names, checked.matrix)}
    return atomic_stream(path, lambda handle: torch.save(data, handle))


def clip_preprocess(frame: np.ndarray, *, size: int = 224) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (3, size, size) float32: openai-clip's ``_transform(size)``.

    torchvision ``Resize(size, BICUBIC)`` on a PIL image: the short side to ``size``, the long
    one to ``int(size * long / short)`` (truncated), PIL's antialiased bicubic, no resize at all
    when the size is already right; ``CenterCrop``: offsets ``int(round((side - size) / 2))``
    (Python's round, halves to even); ``ToTensor`` (/255) and the CLIP mean/std.

    Example:
        >>> x = clip_preprocess(np.full((30, 40, 3), 255, dtype=np.uint8), size=8)
        >>> tuple(x.shape), round(float(x[0, 0, 0]), 4)
        ((3, 8, 8), 1.9303)
    """
    from PIL import Image

    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise InputError(f"expected an (H, W, 3) uint8 RGB frame, found {frame.dtype} {frame.shape}")
    image = Image.fromarray(np.ascontiguousarray(frame))
    width, height = image.size
    short, long = min(width, height), max(width, height)
    new_long = int(size * long / short)
    new_size = (size, new_long) if width <= height else (new_long, size)
    if new_size != image.size:
        image = image.resize(new_size, Image.Resampling.BICUBIC)
    left = int(round((new_size[0] - size) / 2.0))
    top = int(round((new_size[1] - size) / 2.0))
    image = image.crop((left, top, left + size, top + size))
    pixels = torch.from_numpy(np.array(image)).permute(2, 0, 1).float().div(255)
    return (pixels - torch.tensor(CLIP_MEAN)[:, None, None]) / torch.tensor(CLIP_STD)[:, None, None]


@dataclass
class ClipImageEncoder:
    """The image tower of a local transformers CLIP folder (``openai/clip-vit-base-patch32``
    for the official features) and its projection: frames -> (T, 512), not normalised.

    What differs from the official openai-clip pipeline: (1) the frames arrive decoded; the
    official script opened the JPEG files with PIL, so frames decoded by PIL (our data loader)
    give the same pixels, other decoders may differ by a few levels; (2) the official script
    ran on a GPU, where openai-clip computes in float16 (LayerNorms in float32) and stores
    float16 features; we compute in float32, so expect relative differences around 1e-3;
    (3) the official ``convert("RGB")`` ran after resizing, which only matters for palette or
    CMYK images; ours are RGB already. Preprocessing is otherwise the same operations on the
    same library (PIL), and transformers' CLIP vision tower is openai's architecture.
    """

    vision: torch.nn.Module
    projection: torch.nn.Module
    image_size: int
    device: torch.device

    @classmethod
    def load(cls, model_dir: str | Path, *, device: str | torch.device = "cpu") -> ClipImageEncoder:
        """Load ``CLIPModel`` from ``model_dir`` (local files only, nothing downloads); the text
        tower is dropped."""
        model, _ = load_clip(model_dir)
        device = torch.device(device)
        return cls(vision=model.vision_model.to(device).eval(), projection=model.visual_projection.to(device).eval(),
                   image_size=model.config.vision_config.image_size, device=device)

    @torch.no_grad()
    def encode(self, frames: np.ndarray, *, batch_size: int = 32, progress: bool = False) -> torch.Tensor:
        """(T, H, W, 3) uint8 RGB frames -> (T, 512) float32 CPU features."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[0] == 0:
            raise InputError(f"expected (T, H, W, 3) uint8 frames with T >= 1, found shape {frames.shape}")
        out = []
        for start in tqdm(range(0, len(frames), batch_size), desc="CLIP features", unit="batch", disable=not progress):
            pixels = torch.stack([clip_preprocess(f, size=self.image_size) for f in frames[start:start + batch_size]])
            pooled = self.vision(pixel_values=pixels.to(self.device)).pooler_output
            out.append(self.projection(pooled).float().cpu())
        return torch.cat(out)


def extract_features(frames: np.ndarray, model_dir: str | Path, *, batch_size: int = 32,
                     device: str | torch.device = "cpu", progress: bool = False) -> torch.Tensor:
    """(T, H, W, 3) uint8 RGB -> (T, 512) CLIP features; loads the model on every call, so
    keep a :class:`ClipImageEncoder` for many videos."""
    return ClipImageEncoder.load(model_dir, device=device).encode(frames, batch_size=batch_size, progress=progress)


def extract_source_features(source: VideoSource, encoder: ClipImageEncoder, *, key_prefix: str = "",
                            batch_size: int = 32, progress: bool = True) -> dict[str, torch.Tensor]:
    """{``key_prefix`` + image ``file_name``: (1, 512) feature} for every frame of ``source``,
    reading ``batch_size`` frames at a time. A ``key_prefix`` such as
    ``datasets/LVVIS/val/JPEGImages/`` makes the file readable by the official code as well."""
    features: dict[str, torch.Tensor] = {}
    for video_id in tqdm(sorted(source.frame_images), desc="videos", unit="video", disable=not progress):
        images = source.frame_images[video_id]
        keys = []
        for image in images:
            name = image.get("file_name")
            if not isinstance(name, str) or not name:
                raise InputError("image record has no file_name", source=source.name, record=image.get("id"),
                                 field="file_name")
            keys.append(key_prefix + name)
        repeated = sorted(k for k, n in collections.Counter(keys).items() if n > 1 or k in features)
        if repeated:
            raise InputError(f"several frames are named {repeated[0]!r}", source=source.name, record=video_id,
                             field="file_name")
        for start in range(0, len(images), batch_size):
            positions = list(range(start, min(start + batch_size, len(images))))
            rows = encoder.encode(source.frame_slice(video_id, positions), batch_size=batch_size)
            features.update((keys[i], row[None].clone()) for i, row in zip(positions, rows))
    return features


def load_clip(model_dir: str | Path, *, tokenizer: bool = False) -> tuple[Any, Any]:
    """(``CLIPModel``, its tokenizer or None) from a local transformers folder (nothing
    downloads), checked to give the 512-d vectors the zero-shot class head reads."""
    from transformers import AutoTokenizer, CLIPModel

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise InputError("not a transformers CLIP folder (no config.json)", source=str(model_dir))
    try:
        model = CLIPModel.from_pretrained(str(model_dir), local_files_only=True, dtype=torch.float32)
        text_tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True) if tokenizer else None
    except (OSError, ValueError, KeyError) as exc:
        what = "a CLIPModel and its tokenizer" if tokenizer else "a CLIPModel"
        raise InputError(f"cannot load {what}: {exc}", source=str(model_dir)) from None
    if model.config.projection_dim != FEATURE_DIM:
        raise InputError(f"this CLIP gives {model.config.projection_dim}-d features; the zero-shot class "
                         f"head reads {FEATURE_DIM}-d ones (CLIP ViT-B/32)", source=str(model_dir))
    return model, text_tokenizer


# The official prompt (tools/data_prep/vidstg/save_vidstg_clip_text_embeddings.py).
CLASS_PROMPT = "A photo of {}"


@torch.no_grad()
def class_text_embeddings(names: Sequence[str], model_dir: str | Path, *, template: str = CLASS_PROMPT,
                          device: str | torch.device = "cpu", batch_size: int = 256) -> torch.Tensor:
    """(C, 512) float32 class-name embeddings for the zero-shot class head, made as the
    official ``save_vidstg_clip_text_embeddings.py`` makes them: the prompt
    ``"A photo of {name}"`` (underscores read as spaces) through CLIP ViT-B/32's text tower
    and projection (openai ``encode_text``: the end-of-text token's output, projected),
    L2-normalised. ``model_dir`` is a local
    transformers CLIP folder with its tokenizer (openai/clip-vit-base-patch32).
    """
    if not names:
        raise InputError("no category names to embed", source=str(model_dir))
    model, tokenizer = load_clip(model_dir, tokenizer=True)
    model = model.to(device).eval()
    prompts = [template.format(name.replace("_", " ")) for name in names]
    rows = []
    for start in range(0, len(prompts), batch_size):
        tokens = tokenizer(prompts[start:start + batch_size], padding=True, truncation=True,
                           max_length=model.config.text_config.max_position_embeddings, return_tensors="pt")
        pooled = model.text_model(input_ids=tokens["input_ids"].to(device),
                                  attention_mask=tokens["attention_mask"].to(device)).pooler_output
        rows.append(model.text_projection(pooled).float().cpu())
    embeddings = torch.cat(rows)
    return embeddings / embeddings.norm(dim=-1, keepdim=True)


def load_class_embeddings(path: str | Path, *, num_classes: int) -> torch.Tensor:
    """(C, 512) class-name embeddings from a ``.npy`` file such as the official
    ``datasets/metadata/*_clip_text.npy`` / ``fg_bg_5_10_*_ens.npy`` (one row per category, in
    category-id order), checked for shape and finite values.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     np.save(f"{folder}/e.npy", np.ones((3, 512), np.float32))
        ...     load_class_embeddings(f"{folder}/e.npy", num_classes=3).shape
        torch.Size([3, 512])
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("no such class-embedding file", source=str(path))
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"not a numpy .npy array: {exc}", source=str(path)) from None
    if array.ndim != 2 or array.shape[1] != FEATURE_DIM or not np.issubdtype(array.dtype, np.floating):
        raise InputError(f"expected a (C, {FEATURE_DIM}) float array, found {array.dtype} {array.shape}",
                         source=str(path))
    if len(array) != num_classes:
        raise InputError(f"{len(array)} rows for {num_classes} categories: one row per category, in "
                         "category-id order", source=str(path))
    bad = np.flatnonzero(~np.isfinite(array).all(axis=1))
    if len(bad):
        raise InputError(f"row {int(bad[0])} holds NaN or infinite values", source=str(path), record=int(bad[0]))
    return torch.from_numpy(array.astype(np.float32))


def class_embeddings_for(categories: Sequence[Mapping[str, Any]], *, embeddings: str | Path | None = None,
                         clip_model: str | Path | None = None, device: str | torch.device = "cpu") -> torch.Tensor:
    """Embeddings of ``categories`` (ground-truth category records, in the order the model
    numbers them) from a ``.npy`` file or, with ``clip_model``, computed from their names."""
    if (embeddings is None) == (clip_model is None):
        raise InputError("the zero-shot class head needs the class-name embeddings: give either a .npy file "
                         "(--class-embeddings) or a local CLIP folder to compute them (--clip-model)")
    if embeddings is not None:
        return load_class_embeddings(embeddings, num_classes=len(categories))
    names = []
    for c in categories:
        if not isinstance(c.get("name"), str) or not c["name"].strip():
            raise InputError("category has no name to embed", record=c.get("id"), field="name")
        names.append(c["name"])
    return class_text_embeddings(names, clip_model, device=device)
