"""Tiny, randomly initialised models of the real teacher architectures, built offline for tests.

Each builder writes a model (and its processor, with locally written tokenizer vocabularies) into a directory
and returns the keyword options that make the matching teacher load it, e.g.::

    opts = build_tiny_grounded_sam(tmp_path)          # {"detector": ".../gdino", "segmenter": ".../sam.safetensors"}
    teacher = make_teacher("grounded-sam", device="cpu", **opts)

The same paths work through the environment variables of `partdistill_cli.weights` (`weight_env(opts)`
maps the options to them), which is how an end-to-end CLI test can point `partdistill segment` at them.
The weights are random: outputs have the real structure (boxes, masks, scores), not meaningful content.
Thresholds low enough for random weights to detect something are in `TINY_THRESHOLDS`.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

# Random weights give sigmoid scores near 0.5; these thresholds let them through so that tests see detections.
TINY_THRESHOLDS = {
    "grounded-sam": {"box_threshold": 0.0},
    "gdino-boxes": {"box_threshold": 0.0},
    "owlv2-boxes": {"box_threshold": 0.0},
    "clipseg": {"mask_threshold": 0.0},
}

_WORDS = "the a an of on in with and leg seat back arm wing body tail engine lid handle door top base part chair"


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table (CLIP's BPE alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


def clip_tokenizer():
    """A byte-level CLIP BPE tokenizer (every byte, alone and word-final; no merges; 514 ids, 16 tokens max)."""
    from transformers import CLIPTokenizer

    chars = list(_bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    tokenizer = CLIPTokenizer(vocab={t: i for i, t in enumerate(tokens)}, merges=[], pad_token="!")
    tokenizer.model_max_length = 16
    return tokenizer


def bert_tokenizer():
    """A WordPiece vocabulary that puts [CLS], [SEP], '.' and '?' at BERT's ids (101, 102, 1012, 1029).

    Grounding DINO hard-codes those ids to split the prompt into phrases, so the tiny model sees phrases as the
    real one does. Letters and '##'-letters let any lower-case word tokenize.
    """
    tokens = [f"[unused{i}]" for i in range(1100)]
    tokens[0], tokens[100], tokens[101], tokens[102], tokens[103] = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
    tokens[1012], tokens[1029] = ".", "?"
    extra = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    extra += ["##" + t for t in extra] + [",", "'", "-", "_"] + [str(d) for d in range(10)]
    extra += _WORDS.split()
    free = [i for i in range(104, 1100) if tokens[i].startswith("[unused")]
    for i, tok in zip(free, extra, strict=False):
        tokens[i] = tok
    from transformers import BertTokenizer

    return BertTokenizer(vocab={t: i for i, t in enumerate(tokens)})


def seed_weights() -> None:
    """Seed torch before a model's random weights are drawn: with unseeded weights a test now and then met a
    model that finds nothing (an error where the test expects labels); seeded, every run sees the same model."""
    import torch

    torch.manual_seed(0)


def build_tiny_gdino(directory: Path) -> Path:
    """A 2-decoder-layer Grounding DINO (Swin + BERT) with its processor, saved with save_pretrained."""
    from transformers import (
        BertConfig,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessorPil,
        GroundingDinoProcessor,
        SwinConfig,
    )

    directory = Path(directory)
    seed_weights()
    directory.mkdir(parents=True, exist_ok=True)
    backbone = SwinConfig(
        image_size=64,
        patch_size=4,
        embed_dim=16,
        depths=[1, 1, 1, 1],
        num_heads=[1, 1, 2, 2],
        window_size=4,
        out_indices=[2, 3, 4],
    )
    text = BertConfig(vocab_size=1100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    config = GroundingDinoConfig(
        backbone_config=backbone,
        text_config=text,
        d_model=32,
        num_queries=20,
        encoder_layers=1,
        decoder_layers=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_n_points=2,
        decoder_n_points=2,
        max_text_len=64,
    )
    model = GroundingDinoForObjectDetection(config).eval()
    model.save_pretrained(directory)
    processor = GroundingDinoProcessor(
        image_processor=GroundingDinoImageProcessorPil(size={"shortest_edge": 128, "longest_edge": 160}),
        tokenizer=bert_tokenizer(),
    )
    processor.save_pretrained(directory)
    return directory


def _clip_towers(layers: int) -> tuple[dict, dict]:
    """Tiny CLIP text and vision tower configs (32 wide, 64 px images, the tiny CLIP tokenizer's ids)."""
    text = {
        "vocab_size": 514,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": layers,
        "num_attention_heads": 2,
        "max_position_embeddings": 16,
        "bos_token_id": 512,
        "eos_token_id": 513,
        "pad_token_id": 0,
    }
    vision = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": layers,
        "num_attention_heads": 2,
        "image_size": 64,
        "patch_size": 16,
    }
    return text, vision


def build_tiny_owlv2(directory: Path) -> Path:
    """A tiny OWLv2 (ViT + CLIP text, projection_dim == text hidden size) at 64 px, with its processor."""
    from transformers import (
        Owlv2Config,
        Owlv2ForObjectDetection,
        Owlv2ImageProcessorPil,
        Owlv2Processor,
    )

    directory = Path(directory)
    seed_weights()
    directory.mkdir(parents=True, exist_ok=True)
    text, vision = _clip_towers(layers=1)
    config = Owlv2Config(text_config=text, vision_config=vision, projection_dim=32)
    model = Owlv2ForObjectDetection(config).eval()
    # Random box-head weights saturate the sigmoid into zero-size boxes; with a zero last layer every patch
    # predicts the box prior OWLv2 adds (its own grid cell), a plausible non-degenerate box.
    model.box_head.dense2.weight.data.zero_()
    model.box_head.dense2.bias.data.zero_()
    model.save_pretrained(directory)
    processor = Owlv2Processor(
        image_processor=Owlv2ImageProcessorPil(size={"height": 64, "width": 64}), tokenizer=clip_tokenizer()
    )
    processor.save_pretrained(directory)
    return directory


def build_tiny_clipseg(directory: Path) -> Path:
    """A tiny CLIPSeg (CLIP ViT at 64 px + its decoder) with its processor."""
    from transformers import (
        CLIPSegConfig,
        CLIPSegForImageSegmentation,
        CLIPSegProcessor,
        ViTImageProcessorPil,
    )

    directory = Path(directory)
    seed_weights()
    directory.mkdir(parents=True, exist_ok=True)
    text, vision = _clip_towers(layers=2)
    config = CLIPSegConfig(
        text_config=text,
        vision_config=vision,
        projection_dim=32,
        reduce_dim=16,
        extract_layers=[0, 1],
        decoder_num_attention_heads=2,
        decoder_intermediate_size=32,
    )
    CLIPSegForImageSegmentation(config).eval().save_pretrained(directory)
    processor = CLIPSegProcessor(
        image_processor=ViTImageProcessorPil(
            size={"height": 64, "width": 64},
            image_mean=[0.485, 0.456, 0.406],
            image_std=[0.229, 0.224, 0.225],
        ),
        tokenizer=clip_tokenizer(),
    )
    processor.save_pretrained(directory)
    return directory


def build_tiny_sam(path: Path) -> Path:
    """A tiny SAM (ViT image encoder at 64 px, prompt encoder, two-way mask decoder) saved as safetensors.

    The layout of its state dict is that of the official checkpoints, so `weights.build_sam` infers the
    architecture from it exactly as it does for vit_b / vit_l / vit_h.
    """
    import torch
    from safetensors.torch import save_file
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    seed_weights()
    dim, img, patch = 32, 64, 8
    sam = Sam(
        image_encoder=ImageEncoderViT(
            img_size=img,
            patch_size=patch,
            embed_dim=48,
            depth=2,
            num_heads=2,
            mlp_ratio=2.0,
            out_chans=dim,
            qkv_bias=True,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            use_rel_pos=True,
            window_size=4,
            global_attn_indexes=(1,),
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=dim,
            image_embedding_size=(img // patch, img // patch),
            input_image_size=(img, img),
            mask_in_chans=8,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=dim, mlp_dim=64, num_heads=8),
            transformer_dim=dim,
            iou_head_depth=3,
            iou_head_hidden_dim=32,
        ),
    )
    save_file({k: v.contiguous() for k, v in sam.state_dict().items()}, str(path))
    return path


def build_tiny_grounded_sam(directory: Path) -> dict[str, str]:
    """Tiny Grounding DINO + tiny SAM in `directory`; returns the grounded-sam teacher's weight options."""
    directory = Path(directory)
    return {
        "detector": str(build_tiny_gdino(directory / "gdino")),
        "segmenter": str(build_tiny_sam(directory / "sam_tiny.safetensors")),
    }


def build_tiny_teachers(directory: Path) -> dict[str, dict[str, str]]:
    """Every tiny model, once: teacher name -> its weight options (grounded-sam, gdino-boxes, owlv2-boxes,
    clipseg)."""
    directory = Path(directory)
    gsam = build_tiny_grounded_sam(directory)
    return {
        "grounded-sam": gsam,
        "gdino-boxes": {"detector": gsam["detector"]},
        "owlv2-boxes": {"detector": str(build_tiny_owlv2(directory / "owlv2"))},
        "clipseg": {"clipseg": str(build_tiny_clipseg(directory / "clipseg"))},
    }


def weight_env(teacher: str, options: dict[str, str]) -> dict[str, str]:
    """The environment variables (PARTDISTILL_GDINO, ...) that give `teacher` the same weights as `options`."""
    from partdistill_cli.weights import option_env

    return {option_env(teacher, k): v for k, v in options.items()}
