"""Where the teachers' model weights come from, and how they are loaded safely.

Hugging Face models (Grounding DINO, OWLv2, CLIPSeg) are given as a Hub id or a local directory: a constructor
option (`detector=`, `clipseg=`) first, then an environment variable, then the default id. Hub models live in the
usual Hugging Face cache (HF_HOME, HF_HUB_OFFLINE apply). SAM checkpoints (`segmenter=`, PARTDISTILL_SAM) are a
variant name (vit_b, vit_l, vit_h: fetched once from Meta's official URL into `weights_dir()` and checked
against their published SHA-256) or a local .pth / .safetensors file. Nothing is unpickled: .pth files are read
with `torch.load(weights_only=True)`, and remote code is never trusted. When weights are missing the error says
which, and how to provide them; there is no fallback model.

Before a teacher loads anything, `require_weights` checks all its weights at once: those on this machine need
nothing; for the others the network is asked once (bounded to seconds), and if any cannot be had, one error lists
every missing weight of the teacher with the ways to get each (rather than minutes of per-file retries against an
unreachable hub, then an error about the first model only).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from partdistill_cli.device import DeviceError, resolve_device
from partdistill_cli.errors import TeacherError
from partdistill_cli.store import CACHE_ENV as CACHE_ENV
from partdistill_cli.store import cache_root
from partdistill_cli.teachers.specs import WEIGHT_SOURCES, WeightSource, teacher_spec
from partdistill_cli.teachers.specs import option_env as option_env

# The Hugging Face models the teachers load, keyed as in `teachers.specs.WEIGHT_SOURCES` (declared there once).
HUB_MODELS = {k: s for k, s in WEIGHT_SOURCES.items() if s.kind == "hub"}


@dataclass(frozen=True)
class SamCheckpoint:
    """An official SAM checkpoint: file name, URL, SHA-256 and size in bytes as published by Meta."""

    filename: str
    sha256: str
    size: int

    @property
    def url(self) -> str:
        return f"https://dl.fbaipublicfiles.com/segment_anything/{self.filename}"


# SHA-256 digests as listed by several independent projects that pin these files (e.g. micro-sam's model
# registry); the file names carry the first hex digits of each file's MD5.
SAM_CHECKPOINTS = {
    "vit_b": SamCheckpoint(
        "sam_vit_b_01ec64.pth", "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912", 375_042_383
    ),
    "vit_l": SamCheckpoint(
        "sam_vit_l_0b3195.pth", "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622", 1_249_524_607
    ),
    "vit_h": SamCheckpoint(
        "sam_vit_h_4b8939.pth", "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e", 2_564_550_879
    ),
}
SAM_SOURCE = WEIGHT_SOURCES["sam"]
SAM_ENV = SAM_SOURCE.env
SAM_DEFAULT = SAM_SOURCE.default


def weights_dir() -> Path:
    return cache_root() / "weights"


def offline() -> bool:
    """True when the user asked for no network (HF_HUB_OFFLINE, as for the Hugging Face cache)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def torch_device(device: str | None):
    """A torch.device for `device` ("auto" or None: CUDA when present, else CPU); see `device.resolve_device`."""
    import torch

    try:
        return torch.device(resolve_device(device))
    except DeviceError as exc:
        raise TeacherError(str(exc)) from exc


def _looks_like_path(source: str) -> bool:
    """Hub ids are "owner/name" (or a bare legacy name); anything else, or anything that exists, is a path."""
    return source.startswith(("/", ".", "~")) or source.count("/") > 1 or Path(source).expanduser().exists()


def resolve_hub(key: str, option: str | None) -> str:
    """The model source for HUB_MODELS[key]: the option, else its environment variable, else the default id.

    A local directory comes back as an absolute path, a Hub id unchanged.
    """
    spec = HUB_MODELS[key]
    source = option or os.environ.get(spec.env) or spec.default
    if _looks_like_path(source):
        return str(Path(source).expanduser().resolve())
    return source


def missing_weight_message(spec: WeightSource, source: str, option: str, reason: str) -> str:
    """One sentence: weights `source` of `spec` (a Hub id, SAM variant or absolute path) are missing because of
    `reason`, and the ways to provide them: the `--option` flag, the environment variable and, for weights that
    can be downloaded, the command that does it."""
    if Path(source).is_absolute():
        if spec.kind == "sam":
            return (
                f"SAM checkpoint not found at {source} ({reason}); point --{option} FILE or {spec.env}=FILE at a "
                "local .pth or .safetensors file, or use a variant name (vit_b, vit_l, vit_h)"
            )
        return (
            f"{spec.what} weights not found at {source} ({reason}); give a folder written by save_pretrained "
            f"(safetensors), or a Hugging Face model id, with --{option} PATH or {spec.env}=PATH"
        )
    if spec.kind == "sam":
        ckpt = SAM_CHECKPOINTS[source]
        return (
            f"SAM {source} checkpoint is not available ({reason}); download it while online with "
            f"`curl -L -o {sam_cache_path(source)} {ckpt.url}` (or just run once online: it is fetched "
            f"automatically), or point --{option} PATH or {spec.env}=PATH at a local .pth or .safetensors file"
        )
    return (
        f"{spec.what} weights {source!r} are not available ({reason}); download them while online with "
        f"`hf download {source}` (they go to the Hugging Face cache; HF_HUB_OFFLINE=1 then works), or point "
        f"--{option} PATH or {spec.env}=PATH at a local directory holding them"
    )


def load_hub_model(key: str, source: str, model_class: Any, option: str, device) -> tuple[Any, Any]:
    """(processor, model in eval mode on `device`) from a Hub id or local directory; TeacherError if missing."""
    from transformers import AutoProcessor

    local = Path(source).is_absolute()
    if local and not Path(source).is_dir():
        raise TeacherError(missing_weight_message(HUB_MODELS[key], source, option, "no such directory"))
    if local:
        _refuse_pickled_weights(Path(source))
    # A model already in the cache loads without touching the network (no update checks, works offline).
    on_disk = local or offline() or hub_cached(source)
    kwargs = {"local_files_only": True} if on_disk else {}
    try:
        with _quiet_transformers(on_disk):
            processor = AutoProcessor.from_pretrained(source, trust_remote_code=False, **kwargs)
            model = model_class.from_pretrained(source, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TeacherError(missing_weight_message(HUB_MODELS[key], source, option, reason[:300])) from exc
    return processor, model.to(device).eval()


@contextlib.contextmanager
def _quiet_transformers(quiet: bool) -> Iterator[None]:
    """With `quiet`, no transformers progress bars (its `Loading weights` bar on every run) while inside; the
    setting is restored after. Not quiet when the weights are downloaded: a first download of hundreds of MB
    needs its progress bar (that of huggingface_hub, which transformers switches together with its own)."""
    if not quiet:
        yield
        return
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


SAFE_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
PICKLED_WEIGHT_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json")


def _refuse_pickled_weights(folder: Path) -> None:
    """TeacherError when a local model folder holds its weights only as a pickle. Loading one can run code
    if it is hostile, and a folder's origin is unknown (Hub repos are scanned, and transformers reads their
    pickles with torch.load(weights_only=True)), so a local folder must hold safetensors."""
    if any((folder / name).is_file() for name in SAFE_WEIGHT_FILES):
        return
    pickled = [name for name in PICKLED_WEIGHT_FILES if (folder / name).is_file()]
    if pickled:
        raise TeacherError(
            f"{folder}: the weights are a pickle ({pickled[0]}), which can run code when loaded; partdistill "
            "reads a local model folder's weights as safetensors only. Convert them where you trust the file: "
            "load the model with transformers and save_pretrained() it (that writes model.safetensors)"
        )


def hub_cached(source: str) -> bool:
    """Whether a model's config and weights are in the Hugging Face cache, or in `source`, a local directory
    (there as safetensors: see `_refuse_pickled_weights`)."""
    if Path(source).is_absolute():
        found = [(Path(source) / name).is_file() for name in ("config.json", *SAFE_WEIGHT_FILES)]
    else:
        from huggingface_hub import try_to_load_from_cache

        names = ("config.json", *SAFE_WEIGHT_FILES, PICKLED_WEIGHT_FILES[0])
        found = [isinstance(try_to_load_from_cache(source, n), str) for n in names]
    return found[0] and any(found[1:])


def resolve_sam(option: str | None) -> str:
    """The SAM source: the option, else $PARTDISTILL_SAM, else vit_b; a variant name or an absolute file path."""
    source = option or os.environ.get(SAM_ENV) or SAM_DEFAULT
    if source in SAM_CHECKPOINTS:
        return source
    return str(Path(source).expanduser().resolve())


def sam_cache_path(variant: str) -> Path:
    return weights_dir() / SAM_CHECKPOINTS[variant].filename


def download_sam(variant: str, timeout: float = 30.0) -> Path:
    """Fetch the official SAM `variant` checkpoint into `weights_dir()` once, verifying its SHA-256.

    Raises TeacherError when offline, unreachable, or when the download does not match the checksum.
    """
    from partdistill_cli.io_utils import atomic_path

    ckpt = SAM_CHECKPOINTS[variant]
    path = sam_cache_path(variant)
    if path.is_file():
        return path
    if offline():
        raise TeacherError(
            missing_weight_message(
                SAM_SOURCE, variant, "segmenter", f"not in {weights_dir()} and HF_HUB_OFFLINE is set"
            )
        )
    from partdistill_cli.console import console

    console.print(f"downloading SAM {variant} ({ckpt.size / 1e6:.0f} MB) from {ckpt.url} ...")
    digest = hashlib.sha256()
    try:
        with atomic_path(path) as tmp, urllib.request.urlopen(ckpt.url, timeout=timeout) as resp:
            with open(tmp, "wb") as f:
                for block in iter(lambda: resp.read(1 << 20), b""):
                    digest.update(block)
                    f.write(block)
            if digest.hexdigest() != ckpt.sha256:
                raise TeacherError(
                    f"the downloaded SAM {variant} checkpoint has SHA-256 {digest.hexdigest()}, expected "
                    f"{ckpt.sha256}; it was discarded (a proxy or a truncated transfer?)"
                )
    except (urllib.error.URLError, OSError) as exc:
        raise TeacherError(missing_weight_message(SAM_SOURCE, variant, "segmenter", f"download failed: {exc}")) from exc
    return path


def sam_state_dict(path: Path) -> dict:
    """A SAM state dict from a .safetensors file or a .pth read with torch.load(weights_only=True)."""
    import torch

    if not path.is_file():
        raise TeacherError(missing_weight_message(SAM_SOURCE, str(path), "segmenter", "no such file"))
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise TeacherError(f"{path}: not a readable SAM checkpoint ({exc})") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise TeacherError(f"{path}: not a SAM checkpoint (expected a state dict of tensors)")
    return state


def _count(state: dict, prefix: str) -> int:
    return len({k[len(prefix) :].split(".", 1)[0] for k in state if k.startswith(prefix)})


def build_sam(state: dict):
    """A segment_anything `Sam` whose architecture is read off the state dict's tensor shapes, loaded strictly.

    Works for the official vit_b / vit_l / vit_h checkpoints and for smaller models of the same layout. The
    mask decoder's head count (8 in every official model) is the one thing shapes do not reveal.
    """
    from functools import partial

    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    try:
        pos = state["image_encoder.pos_embed"]  # (1, grid, grid, dim)
        patch = int(state["image_encoder.patch_embed.proj.weight"].shape[-1])
        grid, dim = int(pos.shape[1]), int(pos.shape[3])
        depth = _count(state, "image_encoder.blocks.")
        rel = [int(state[f"image_encoder.blocks.{i}.attn.rel_pos_h"].shape[0]) for i in range(depth)]
        head_dim = int(state["image_encoder.blocks.0.attn.rel_pos_h"].shape[1])
        global_idx = tuple(i for i, r in enumerate(rel) if r == 2 * grid - 1)
        window = next(((r + 1) // 2 for r in rel if r != 2 * grid - 1), grid)
        out_chans = int(state["image_encoder.neck.0.weight"].shape[0])
        mlp_ratio = state["image_encoder.blocks.0.mlp.lin1.weight"].shape[0] / dim
        img = grid * patch
        encoder = ImageEncoderViT(
            img_size=img,
            patch_size=patch,
            embed_dim=dim,
            depth=depth,
            num_heads=dim // head_dim,
            mlp_ratio=mlp_ratio,
            out_chans=out_chans,
            qkv_bias="image_encoder.blocks.0.attn.qkv.bias" in state,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            use_rel_pos=True,
            window_size=window,
            global_attn_indexes=global_idx,
        )
        prompt = PromptEncoder(
            embed_dim=out_chans,
            image_embedding_size=(grid, grid),
            input_image_size=(img, img),
            mask_in_chans=int(state["prompt_encoder.mask_downscaling.3.weight"].shape[0]),
        )
        decoder = MaskDecoder(
            num_multimask_outputs=int(state["mask_decoder.mask_tokens.weight"].shape[0]) - 1,
            transformer=TwoWayTransformer(
                depth=_count(state, "mask_decoder.transformer.layers."),
                embedding_dim=out_chans,
                mlp_dim=int(state["mask_decoder.transformer.layers.0.mlp.lin1.weight"].shape[0]),
                num_heads=8,
            ),
            transformer_dim=out_chans,
            iou_head_depth=_count(state, "mask_decoder.iou_prediction_head.layers."),
            iou_head_hidden_dim=int(state["mask_decoder.iou_prediction_head.layers.0.weight"].shape[0]),
        )
        sam = Sam(image_encoder=encoder, prompt_encoder=prompt, mask_decoder=decoder)
        sam.load_state_dict(state, strict=True)
    except (KeyError, IndexError, RuntimeError, ValueError, ZeroDivisionError) as exc:
        raise TeacherError(f"not a segment-anything SAM checkpoint ({str(exc).splitlines()[0][:300]})") from exc
    return sam.eval()


def load_sam(source: str, device):
    """A SAM model on `device` from a variant name (downloaded once, checksum-verified) or a local file."""
    path = download_sam(source) if source in SAM_CHECKPOINTS else Path(source)
    return build_sam(sam_state_dict(path)).to(device)


def sam_present(source: str) -> bool:
    return (sam_cache_path(source) if source in SAM_CHECKPOINTS else Path(source)).is_file()


def identified(source: str) -> str:
    """`source@identity`: weights a teacher loaded (a Hub id, SAM variant or absolute path) with what identifies
    their content (`weights_identity`). Teacher names carry it, so caches keyed by a name never answer with
    other weights' work."""
    return f"{source}@{weights_identity(source)}"


def weights_identity(source: str) -> str:
    """What identifies the content of loaded weights `source`:

    - a SAM variant: "sha256:" + the start of its published SHA-256 (checked when it was downloaded);
    - a Hub id: "rev:" + the commit of its snapshot in the Hugging Face cache;
    - a local file or folder: "files:" + a digest of the names, sizes and modification times of the file, or
      of the folder's files (weights, config, processor). Hashing the content would read gigabytes on every
      run; replacing a file changes its modification time, which is all it takes to miss the cache.
    """
    if source in SAM_CHECKPOINTS:
        return f"sha256:{SAM_CHECKPOINTS[source].sha256[:16]}"
    path = Path(source)
    if path.is_absolute():
        files = (
            sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")) if path.is_dir() else [path]
        )
        stats = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]
        return "files:" + hashlib.sha256(repr(stats).encode()).hexdigest()[:16]
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(source, "config.json")
    # The cached file lives in snapshots/<commit>/; a loaded Hub model always has its config there.
    return f"rev:{Path(config).parent.name}" if isinstance(config, str) else "rev:unknown"


# How long the one look at the network before loading a teacher may take (DNS included), in seconds.
PROBE_TIMEOUT = 5.0


@dataclass(frozen=True)
class NeededWeights:
    """Weights a teacher is about to load: its weight `option` (the keyword and --flag), what they are (`spec`)
    and where from (`source`: a Hub id, a SAM variant name or an absolute path)."""

    option: str
    spec: WeightSource
    source: str

    @property
    def local(self) -> bool:
        return Path(self.source).is_absolute()

    def present(self) -> bool:
        """Whether the weights are on this machine (Hugging Face cache, partdistill's weights folder or the path)."""
        if self.spec.kind == "sam":
            return sam_present(self.source)
        return (not self.local or Path(self.source).is_dir()) and hub_cached(self.source)

    def url(self) -> str:
        """Where they would be downloaded from."""
        if self.spec.kind == "sam":
            return SAM_CHECKPOINTS[self.source].url
        from huggingface_hub import hf_hub_url

        return hf_hub_url(self.source, "config.json")


def needed_weights(teacher: str, options: Mapping[str, Any]) -> list[NeededWeights]:
    """The weights teacher `teacher` loads with its keyword `options` (weight options not given come from their
    environment variables, then the defaults), in the spec's order."""
    out = []
    for option, key in teacher_spec(teacher).weights.items():
        spec = WEIGHT_SOURCES[key]
        given = options.get(option)
        source = resolve_sam(given) if spec.kind == "sam" else resolve_hub(key, given)
        out.append(NeededWeights(option, spec, source))
    return out


def require_weights(teacher: str, options: Mapping[str, Any]) -> None:
    """Check, before any model is loaded, that every weight `teacher` needs is here or can be downloaded now.

    Weights on this machine need nothing. For the others the network is asked once, all in parallel and
    bounded by `PROBE_TIMEOUT` (an unreachable hub otherwise costs minutes of retries per file). Raises one
    TeacherError naming every missing weight and the ways to get each, so that a first run without network
    fails in seconds with everything to fetch listed at once.
    """
    needed = needed_weights(teacher, options)
    for w in needed:
        if w.local and w.spec.kind == "hub" and Path(w.source).is_dir():
            _refuse_pickled_weights(Path(w.source))  # its own reason, more use than "no saved model there"
    missing = [w for w in needed if not w.present()]
    remote = [w for w in missing if not w.local]
    urls = [w.url() for w in remote]
    if not urls:
        why = {}
    elif offline():
        why = dict.fromkeys(urls, "HF_HUB_OFFLINE is set")
    else:
        why = probe_urls(urls)
    if not any(w.local or why[w.url()] for w in missing):
        return  # all downloadable: the loaders fetch them
    reasons = [missing_weight_message(w.spec, w.source, w.option, _why_missing(w, why)) for w in missing]
    raise TeacherError(
        f"the {teacher} teacher cannot start: {'; '.join(reasons)}. `partdistill doctor` lists the weights of "
        "every teacher and where they are looked for"
    )


def _why_missing(weights: NeededWeights, unreachable: dict[str, str | None]) -> str:
    if weights.local:
        if weights.spec.kind == "sam":
            return "no such file"
        return "no saved model there" if Path(weights.source).is_dir() else "no such directory"
    why = unreachable[weights.url()]
    return f"not downloaded yet, and {why}" if why else "not downloaded yet; it could be downloaded now"


def probe_urls(urls: list[str]) -> dict[str, str | None]:
    """For each URL, None when a download from it can start, else why not (host unreachable, not found).

    One HEAD request each, in daemon threads, all bounded together by PROBE_TIMEOUT: a socket timeout does not
    bound a hanging DNS lookup, a join does. Proxies in the environment apply, as they do to the downloads.
    """
    answers: dict[str, str | None] = {}
    threads = [threading.Thread(target=lambda u=u: answers.update({u: _probe(u)}), daemon=True) for u in set(urls)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + PROBE_TIMEOUT
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    late = f"no answer within {PROBE_TIMEOUT:.0f} s"
    return {u: answers.get(u, f"{urllib.parse.urlsplit(u).netloc} gave {late}") for u in urls}


def _probe(url: str) -> str | None:
    host = urllib.parse.urlsplit(url).netloc
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=PROBE_TIMEOUT):
            return None
    except urllib.error.HTTPError as exc:
        # 401/403: the repository wants a login the downloader may have (a token); leave that to it.
        return None if exc.code in (401, 403) else f"{host} answers HTTP {exc.code} for it"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"{host} cannot be reached ({getattr(reason, 'strerror', None) or reason})"
