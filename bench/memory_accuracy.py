"""Memory estimator (``toolkit.compute.memory``) against what one training step really holds.

    python bench/memory_accuracy.py [--out bench/results/memory_accuracy.json] [--device cpu|cuda]

For a set of small models and settings it builds the model, runs one training step and measures:

- model states, exactly, on any device: bytes of the parameter storages (tied weights once), of
  ``p.grad`` for trainable parameters and of every tensor in ``optimizer.state`` after the step;
- activations: bytes of the distinct tensor storages autograd saves for backward during the forward
  pass and the loss (``torch.autograd.graph.saved_tensors_hooks``), parameters excluded. With full
  recomputation (reentrant ``torch.utils.checkpoint``) this is what is kept through the forward;
  the one-layer working set recomputed in backward is not seen and is left out of the comparison.

Not measurable on CPU: the allocator peak (transient buffers, workspaces, fragmentation) and the
framework overhead; both need a GPU (``--device cuda``: ``torch.cuda.max_memory_allocated`` over
the step, compared with the estimated total less the assumed overhead). Models: the demo GPT
(``toolkit.demo.model.GPT``, GPT-2 layout) and a small llama-like module defined here (RMSNorm,
grouped-query attention, SwiGLU, untied lm_head, HF module names; no rotary embedding, which
does not change parameter counts). Prints a table and writes JSON. Not a test: asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import platform
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.graph import saved_tensors_hooks
from torch.utils.checkpoint import checkpoint

from toolkit.cli import render_table
from toolkit.compute.lora import DEFAULT_TARGETS
from toolkit.compute.memory import Setup, estimate_memory
from toolkit.compute.model_config import ModelShape, shape_from_dict
from toolkit.demo.model import GPT, GPTConfig

ROOT = Path(__file__).resolve().parents[1]

# ----------------------------------------------------------------------------- models


class LlamaBlock(nn.Module):
    def __init__(self, s: ModelShape) -> None:
        super().__init__()
        h, q, kv, i = s.hidden_size, s.q_dim, s.kv_dim, s.intermediate_size
        self.s = s
        self.input_layernorm = nn.RMSNorm(h)
        self.post_attention_layernorm = nn.RMSNorm(h)
        self.self_attn = nn.ModuleDict(
            {
                "q_proj": nn.Linear(h, q, bias=False),
                "k_proj": nn.Linear(h, kv, bias=False),
                "v_proj": nn.Linear(h, kv, bias=False),
                "o_proj": nn.Linear(q, h, bias=False),
            }
        )
        self.mlp = nn.ModuleDict(
            {
                "gate_proj": nn.Linear(h, i, bias=False),
                "up_proj": nn.Linear(h, i, bias=False),
                "down_proj": nn.Linear(i, h, bias=False),
            }
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        s, a = self.s, self.self_attn
        n = self.input_layernorm(x)
        q = a["q_proj"](n).view(b, t, s.num_heads, s.head_dim).transpose(1, 2)
        k = a["k_proj"](n).view(b, t, s.num_kv_heads, s.head_dim).transpose(1, 2)
        v = a["v_proj"](n).view(b, t, s.num_kv_heads, s.head_dim).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        x = x + a["o_proj"](y.transpose(1, 2).contiguous().view(b, t, s.q_dim))
        n = self.post_attention_layernorm(x)
        m = self.mlp
        return x + m["down_proj"](F.silu(m["gate_proj"](n)) * m["up_proj"](n))


class Llama(nn.Module):
    def __init__(self, s: ModelShape) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(s.vocab_size, s.hidden_size)
        self.blocks = nn.ModuleList(LlamaBlock(s) for _ in range(s.num_layers))
        self.norm = nn.RMSNorm(s.hidden_size)
        self.lm_head = nn.Linear(s.hidden_size, s.vocab_size, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.embed_tokens(idx)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.norm(x))


class LoraLinear(nn.Module):
    """Frozen ``base`` plus trainable ``B @ A`` of rank ``r`` (A: r x in, B: out x r)."""

    def __init__(self, base: nn.Linear, r: int) -> None:
        super().__init__()
        self.base = base
        self.lora_A = nn.Parameter(torch.randn(r, base.in_features, dtype=base.weight.dtype) * 0.01)
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, dtype=base.weight.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_A.T) @ self.lora_B.T


class Checkpointed(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return checkpoint(self.inner, x, use_reentrant=True)


def gpt_shape(h: int, layers: int, heads: int, vocab: int, ctx: int) -> ModelShape:
    return shape_from_dict(
        {"model_type": "gpt2", "n_embd": h, "n_layer": layers, "n_head": heads,
         "vocab_size": vocab, "n_positions": ctx},
        source=f"demo GPT h{h} L{layers} a{heads} V{vocab}",
    )  # fmt: skip


def llama_shape(h: int, layers: int, heads: int, kv: int, inter: int, vocab: int) -> ModelShape:
    return shape_from_dict(
        {"model_type": "llama", "hidden_size": h, "num_hidden_layers": layers,
         "num_attention_heads": heads, "num_key_value_heads": kv, "intermediate_size": inter,
         "vocab_size": vocab, "max_position_embeddings": 4096},
        source=f"llama-like h{h} L{layers} a{heads} kv{kv} i{inter} V{vocab}",
    )  # fmt: skip


def build(shape: ModelShape) -> nn.Module:
    if shape.model_type == "gpt2":
        cfg = GPTConfig(
            vocab_size=shape.vocab_size,
            block_size=shape.max_position_embeddings,
            n_layer=shape.num_layers,
            n_head=shape.num_heads,
            n_embd=shape.hidden_size,
        )
        return GPT(cfg)
    return Llama(shape)


def apply_lora(model: nn.Module, shape: ModelShape, r: int) -> None:
    targets = DEFAULT_TARGETS[shape.model_type]
    for p in model.parameters():
        p.requires_grad_(False)
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if isinstance(child, nn.Linear) and any(
                full == t or full.endswith("." + t) for t in targets
            ):
                setattr(module, child_name, LoraLinear(child, r))


# ----------------------------------------------------------------------------- measurement


def _storage_bytes(tensors) -> int:
    seen: dict[int, int] = {}
    for t in tensors:
        st = t.untyped_storage()
        seen[st.data_ptr()] = st.nbytes()
    return sum(seen.values())


def make_optimizer(name: str, params):
    params = list(params)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=1e-3)
    if name == "sgd":
        return torch.optim.SGD(params, lr=1e-3, momentum=0.9)
    if name == "adafactor":
        return torch.optim.Adafactor(params, lr=1e-3)
    raise ValueError(name)


def measure(
    shape: ModelShape, setup: Setup, device: str, dtype: torch.dtype, seed: int = 0
) -> dict:
    torch.manual_seed(seed)
    model = build(shape)
    if setup.method == "lora":
        apply_lora(model, shape, setup.lora_rank or 8)
    if setup.recompute == "full":
        model.blocks = nn.ModuleList(Checkpointed(b) for b in model.blocks)
    model = model.to(device=device, dtype=dtype)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(setup.optimizer, trainable)
    b, s = setup.micro_batch, setup.seq_len
    x = torch.randint(0, shape.vocab_size, (b, s), device=device)
    y = torch.randint(0, shape.vocab_size, (b, s), device=device)
    param_ptrs = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        st = t.untyped_storage()
        if st.data_ptr() not in param_ptrs and t.dtype.is_floating_point:
            saved[st.data_ptr()] = st.nbytes()
        return t

    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    with saved_tensors_hooks(pack, lambda t: t):
        logits = model(x)
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
    del logits
    loss.backward()
    opt.step()
    peak = None
    if device == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base + _storage_bytes(model.parameters())
    state_tensors = [
        v for st in opt.state.values() for v in st.values() if isinstance(v, torch.Tensor)
    ]
    return {
        "params": sum(p.numel() for p in {id(p): p for p in model.parameters()}.values()),
        "trainable_params": sum(p.numel() for p in trainable),
        "weights": _storage_bytes(model.parameters()),
        "gradients": _storage_bytes(p.grad for p in trainable),
        "optimizer_states": sum(v.nbytes for v in state_tensors),
        "activations": sum(saved.values()),
        "peak_allocated": peak,
    }


@dataclass(frozen=True)
class Case:
    name: str
    shape: ModelShape
    setup: Setup
    dtype: str = "fp32"


def cases() -> list[Case]:
    gpt = gpt_shape(h=128, layers=4, heads=4, vocab=512, ctx=256)
    llama = llama_shape(h=128, layers=4, heads=4, kv=2, inter=352, vocab=512)
    base = Setup(
        precision="fp32",
        micro_batch=4,
        seq_len=128,
        attention="flash",  # torch's CPU SDPA kernel saves q, k, v, out, logsumexp
        dropout=False,  # the demo GPT runs with dropout 0
        overhead_bytes=0,
    )
    eager = replace(base, attention="eager")
    return [
        Case("gpt adamw fp32", gpt, base),
        Case("gpt adamw bf16", gpt, replace(base, precision="bf16"), "bf16"),
        Case("gpt sgd fp32", gpt, replace(base, optimizer="sgd")),
        Case("gpt adafactor fp32", gpt, replace(base, optimizer="adafactor")),
        Case("gpt b8 s256", gpt, replace(base, micro_batch=8, seq_len=256)),
        Case("gpt full-recompute", gpt, replace(base, recompute="full")),
        Case("gpt lora r8", gpt, replace(base, method="lora", lora_rank=8)),
        Case("gpt eager formula", gpt, eager),
        Case("llama adamw fp32", llama, base),
        Case("llama lora r8", llama, replace(base, method="lora", lora_rank=8)),
    ]


def run_case(case: Case, device: str) -> dict:
    dtype = torch.bfloat16 if case.dtype == "bf16" else torch.float32
    est = estimate_memory(case.shape, case.setup)
    m = measure(case.shape, case.setup, device, dtype)
    e = dict(est.bytes)
    act_est = e["activations"]
    note = ""
    if case.setup.recompute == "full":
        # the recompute working set of one layer lives only during backward: not in m["activations"]
        from toolkit.compute.activations import layer_bytes

        s = case.shape
        act_est -= layer_bytes(
            case.setup.seq_len, case.setup.micro_batch, s.hidden_size, s.num_heads, "none",
            4 if case.dtype == "fp32" else 2, case.setup.dropout, case.setup.attention,
        )  # fmt: skip
        note = "activations: end-of-forward (recompute working set excluded)"
    if case.setup.attention == "eager":
        note = "estimate assumes unfused attention (s x s stored); CPU SDPA is fused"
    if case.setup.method == "lora":
        note = "frozen linears without adapters keep no input: the estimate is an upper bound"
    if case.shape.model_type == "llama" and case.setup.method == "full":
        note = (
            "nn.RMSNorm on CPU is unfused and also keeps x*rstd (+h per norm, not in the formula)"
        )
    rows = {}
    for key in ("weights", "gradients", "optimizer_states"):
        rows[key] = {"estimated": e[key], "measured": m[key]}
    rows["activations"] = {"estimated": act_est, "measured": m["activations"]}
    states_est = sum(e[k] for k in ("weights", "gradients", "optimizer_states"))
    if m["peak_allocated"] is not None:
        rows["peak_allocated"] = {
            "estimated": states_est + e["activations"],
            "measured": m["peak_allocated"],
        }
    return {
        "case": case.name,
        "model": case.shape.source,
        "setup": asdict(case.setup),
        "dtype": case.dtype,
        # measured params include LoRA adapters; the estimate's params are the base model's
        "params": {
            "estimated": est.params + (est.trainable_params if case.setup.method != "full" else 0),
            "measured": m["params"],
        },
        "trainable_params": {"estimated": est.trainable_params, "measured": m["trainable_params"]},
        "bytes": rows,
        "note": note,
    }


def _ratio(row: dict) -> str:
    return f"{row['estimated'] / row['measured']:.3f}" if row["measured"] else "-"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/memory_accuracy.json")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here; GPU figures need a lent GPU")
    torch.set_num_threads(2)
    results = [run_case(c, args.device) for c in cases()]
    headers = ["case", "params", "weights est/meas", "grads est/meas", "optim est/meas",
               "act est/meas", "act ratio"]  # fmt: skip
    rows = []
    for r in results:
        b = r["bytes"]
        rows.append([
            r["case"],
            "ok" if r["params"]["estimated"] == r["params"]["measured"] else "DIFF",
            *(f"{b[k]['estimated']:,}/{b[k]['measured']:,}" for k in ("weights", "gradients", "optimizer_states", "activations")),
            _ratio(b["activations"]),
        ])  # fmt: skip
    print(render_table(headers, rows))
    for r in results:
        if r["note"]:
            print(f"  {r['case']}: {r['note']}")
    print(
        "  optimizer: measured includes torch's per-parameter 'step' scalar (4 B each), "
        "not in the estimate"
    )
    if args.device == "cpu":
        print(
            "\nCPU: model states and saved activations are exact byte counts; allocator peak, "
            "transient buffers and framework overhead need a GPU (--device cuda, "
            "torch.cuda.max_memory_allocated) and a lent GPU."
        )
    payload = {
        "device": args.device,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "method": __doc__.strip().splitlines()[0],
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
