"""The built-in example: a character-level GPT trained on ``data/corpus.txt``.

``build_spec(device)`` is what ``python -m toolkit.profiling.l0_runner`` validates when run with
no arguments, and a template for ``--entry your_module:build_spec``.
"""

from __future__ import annotations

import math
from importlib import resources

import torch
import torch.nn.functional as F
from torch import nn

from toolkit.demo.model import GPT, GPTConfig
from toolkit.profiling.spec import TrainSpec

BATCH_SIZE = 16
BLOCK_SIZE = 64  # tokens per sequence
VAL_FRACTION = 0.1
PROMPT = "The first loss "


def load_corpus() -> str:
    return resources.files("toolkit.demo").joinpath("data/corpus.txt").read_text(encoding="utf-8")


class CharTokenizer:
    """Maps each distinct character of the corpus to an id."""

    def __init__(self, text: str) -> None:
        self.chars = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def encode(self, text: str) -> torch.Tensor:
        return torch.tensor([self.index[c] for c in text], dtype=torch.long)

    def decode(self, ids: torch.Tensor) -> str:
        return "".join(self.chars[i] for i in ids.tolist())


def build_spec(device: torch.device) -> TrainSpec:
    torch.manual_seed(0)
    text = load_corpus()
    tok = CharTokenizer(text)
    data = tok.encode(text)
    n_val = int(len(data) * VAL_FRACTION)
    train, val = data[:-n_val], data[-n_val:]
    cfg = GPTConfig(
        vocab_size=len(tok.chars), block_size=BLOCK_SIZE, n_layer=2, n_head=4, n_embd=64
    )

    def make_model() -> nn.Module:
        return GPT(cfg).to(device)

    model = make_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    gen = torch.Generator().manual_seed(1)

    def next_batch() -> tuple[torch.Tensor, torch.Tensor]:
        starts = torch.randint(0, len(train) - BLOCK_SIZE - 1, (BATCH_SIZE,), generator=gen)
        x = torch.stack([train[s : s + BLOCK_SIZE] for s in starts])
        y = torch.stack([train[s + 1 : s + 1 + BLOCK_SIZE] for s in starts])
        return x.to(device), y.to(device)

    def loss_fn(m: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        logits = m(x)
        return F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))

    def eval_fn(m: nn.Module) -> dict[str, float]:
        """Validation loss (nats/char), perplexity and next-char accuracy over the held-out tail."""
        n = (len(val) - 1) // BLOCK_SIZE
        x = val[: n * BLOCK_SIZE].view(n, BLOCK_SIZE).to(device)
        y = val[1 : n * BLOCK_SIZE + 1].view(n, BLOCK_SIZE).to(device)
        logits = m(x)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1)).item()
        acc = (logits.argmax(-1) == y).float().mean().item()
        return {"val_loss": loss, "val_perplexity": math.exp(loss), "val_char_accuracy": acc}

    def save_checkpoint(path) -> None:
        """Everything the next step depends on: weights, AdamW moments, the data sampler's RNG."""
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "data_rng": gen.get_state(),
            },
            path,
        )

    def load_checkpoint(path) -> None:
        state = torch.load(path, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        gen.set_state(state["data_rng"])

    def infer_fn(m: nn.Module) -> str:
        prompt = tok.encode(PROMPT).unsqueeze(0).to(device)
        return tok.decode(m.generate(prompt, max_new_tokens=40)[0])

    return TrainSpec(
        model=model,
        optimizer=optimizer,
        batches=next_batch,
        loss_fn=loss_fn,
        eval_fn=eval_fn,
        infer_fn=infer_fn,
        make_model=make_model,
        tokens_per_step=BATCH_SIZE * BLOCK_SIZE,
        save_checkpoint=save_checkpoint,
        load_checkpoint=load_checkpoint,
        name="built-in example: char-level GPT (2 layers, d=64) on toolkit/demo/data/corpus.txt",
    )
