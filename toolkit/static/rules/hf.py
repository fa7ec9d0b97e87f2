"""LC8xx: Hugging Face transformers, PEFT and tokenizers."""

from __future__ import annotations

import ast
import re

from toolkit.static.catalogue import Hit, rule
from toolkit.static.engine import ModuleFacts, dotted, has_star_kwargs, kwarg
from toolkit.static.rules._common import backward_events, dtype_name, enclosing_function, is_true

HF = ("transformers",)
PEFT = ("peft", "transformers")
TRAINERS = (
    "Trainer",
    "SFTTrainer",
    "Seq2SeqTrainer",
    "DPOTrainer",
    "ORPOTrainer",
    "KTOTrainer",
    "GRPOTrainer",
    "RewardTrainer",
)
ARGS = (
    "TrainingArguments",
    "Seq2SeqTrainingArguments",
    "SFTConfig",
    "DPOConfig",
    "ORPOConfig",
    "GRPOConfig",
    "KTOConfig",
    "RewardConfig",
)


def pretrained(mod: ModuleFacts):
    """(call, owner class, model id literal or None) for every ``X.from_pretrained(...)``."""
    for c in mod.calls_attr("from_pretrained"):
        q = mod.resolve(c.func)
        owner = q.rsplit(".", 2)[-2] if "." in q else ""
        mid = (
            mod.value_of(c.args[0], None)
            if c.args
            else mod.value_of(kwarg(c, "pretrained_model_name_or_path"), None)
        )
        yield c, owner, mid if isinstance(mid, str) else None


def model_ids(mod: ModuleFacts) -> list[str]:
    return [
        m
        for c, o, m in pretrained(mod)
        if m and "Tokenizer" not in o and "Config" not in o and "Processor" not in o
    ]


def tokenizer_ids(mod: ModuleFacts) -> list[str]:
    return [m for c, o, m in pretrained(mod) if m and ("Tokenizer" in o or "Processor" in o)]


def trains_with_hf(mod: ModuleFacts) -> bool:
    return bool(mod.calls_q(*TRAINERS)) or any(backward_events(sc) for sc in mod.bw_scopes)


def _attr_assigned(mod: ModuleFacts, attr: str):
    """Values assigned to ``*.attr`` (e.g. ``tokenizer.pad_token``)."""
    for k, vals in mod.assigns.items():
        if k == attr or k.endswith("." + attr):
            for v, st in vals:
                yield k, v, st


def _training_args(mod: ModuleFacts):
    return mod.calls_q(*ARGS)


def _eos_in_data(mod: ModuleFacts) -> bool:
    """The training text carries EOS tokens: appended by hand (``+ tokenizer.eos_token``,
    ``.append(tokenizer.eos_token_id)``, ``add_eos_token=True``) or by a chat template. Without
    them, masking pad == eos only masks padding, which is what it is for."""
    src = mod.source
    return (
        "apply_chat_template" in src
        or "add_eos_token" in src
        or bool(
            re.search(r"\+\s*\w*\.?eos_token\b|eos_token_id\s*\]|append\(\s*\w*\.?eos_token", src)
        )
    )


@rule(
    "LC801",
    "pad-token-eos-with-lm-collator",
    "warning",
    HF,
    """Flags ``tokenizer.pad_token = tokenizer.eos_token`` in a script that trains with
    ``DataCollatorForLanguageModeling``. The collator masks every pad position out of the labels,
    and since pad == eos it masks the real end-of-sequence tokens too (and when the text has no
    EOS appended there is none to learn from anyway): the fine-tuned model never learns to stop
    generating.""",
    "append EOS to each example and use a pad token distinct from it (tokenizer.add_special_tokens({'pad_token': '<pad>'}) + resize_token_embeddings), or build labels that keep the final EOS",
)
def pad_eos(mod: ModuleFacts):
    if not mod.calls_q("DataCollatorForLanguageModeling"):
        return
    why = (
        "the EOS tokens in the text are masked from the labels"
        if _eos_in_data(mod)
        else "no EOS is appended to the text and any the tokenizer adds is masked from the labels"
    )
    for k, v, st in _attr_assigned(mod, "pad_token"):
        if "eos_token" in dotted(v):
            yield Hit(
                st,
                f"'{k} = {dotted(v)}' with DataCollatorForLanguageModeling: {why}, so the model never learns to stop",
            )


@rule(
    "LC802",
    "right-padding-for-batched-generation",
    "warning",
    HF,
    """Flags batched generation with a decoder-only model (``AutoModelForCausalLM``) where the
    prompts are padded (``padding=True``) and ``padding_side`` is never set to ``"left"``. With
    right padding the model continues after pad tokens: generations for all but the longest
    prompt are wrong.""",
    "set tokenizer.padding_side = 'left' (or from_pretrained(..., padding_side='left')) before tokenizing prompts for generate()",
)
def right_padding(mod: ModuleFacts):
    causal = any("CausalLM" in o or "LMHead" in o for _, o, _ in pretrained(mod))
    if not causal or not mod.calls_attr("generate"):
        return
    for _, v, _ in _attr_assigned(mod, "padding_side"):
        if mod.value_of(v, None) == "left" or not isinstance(v, ast.Constant):
            return
    for c, _o, _ in pretrained(mod):
        if mod.value_of(kwarg(c, "padding_side"), None) == "left":
            return
    toks = mod.names_with("tokenizer") | {"tokenizer", "tok"}
    # Only prompts tokenized where generate() runs (same function, or module level): padded
    # training text tokenized in a preprocessing function is not a generate() prompt.
    near_generate = {
        id(e.node)
        for sc in mod.scopes
        if any(e.attr == "generate" for e in sc.events)
        for e in sc.events
    }
    for c in mod.calls_with_kw("padding"):  # a hit needs padding=...
        if id(c) not in near_generate:
            continue
        name = dotted(c.func)
        if name in toks or (
            isinstance(c.func, ast.Attribute)
            and c.func.attr in ("__call__", "batch_encode_plus")
            and dotted(c.func.value) in toks
        ):
            pad = mod.value_of(kwarg(c, "padding"), None)
            if pad in (True, "longest", "max_length"):
                yield Hit(
                    c,
                    f"'{name}(..., padding={pad!r})' pads prompts on the right for generate() with a decoder-only model",
                )
                return


@rule(
    "LC803",
    "device-map-auto-with-trainer",
    "info",
    HF,
    """Flags ``from_pretrained(..., device_map="auto")`` in a script that trains with a
    ``Trainer``. ``device_map="auto"`` splits layers across GPUs (naive pipeline: one GPU busy at
    a time) and conflicts with DDP/``accelerate launch``, where each process must hold its own
    replica.""",
    "load without device_map for multi-GPU training (let Trainer/accelerate place it), or device_map={'': local_rank}",
)
def device_map_trainer(mod: ModuleFacts):
    if not mod.calls_q(*TRAINERS):
        return
    for c, o, _ in pretrained(mod):
        if mod.value_of(kwarg(c, "device_map"), None) == "auto":
            yield Hit(c, f"'{o}.from_pretrained(device_map=\"auto\")' with Trainer training")


def _eval_strategy(mod: ModuleFacts, c: ast.Call):
    for k in ("eval_strategy", "evaluation_strategy"):
        node = kwarg(c, k)
        if node is not None:
            v = mod.value_of(node, None)
            if v is None and isinstance(node, ast.Attribute):
                v = node.attr.lower()
            return v
    return "no"


@rule(
    "LC804",
    "load-best-model-strategy-mismatch",
    "error",
    HF,
    """Flags ``TrainingArguments(load_best_model_at_end=True)`` whose evaluation strategy is
    ``"no"`` (the default) or differs from ``save_strategy``, or whose ``save_steps`` is not a
    multiple of ``eval_steps``. Transformers raises ``ValueError`` at start-up for these, after
    the model and data have been loaded.""",
    "set eval_strategy == save_strategy (and save_steps a multiple of eval_steps)",
)
def load_best(mod: ModuleFacts):
    for c in _training_args(mod):
        if has_star_kwargs(c) or not is_true(mod, kwarg(c, "load_best_model_at_end")):
            continue
        ev = _eval_strategy(mod, c)
        sv_node = kwarg(c, "save_strategy")
        sv = mod.value_of(sv_node, None) if sv_node is not None else "steps"
        if sv is None and isinstance(sv_node, ast.Attribute):
            sv = sv_node.attr.lower()
        if (
            ev in ("no", None)
            and kwarg(c, "eval_strategy") is None
            and kwarg(c, "evaluation_strategy") is None
        ):
            yield Hit(c, "load_best_model_at_end=True but no eval_strategy: there is no best model")
        elif isinstance(ev, str) and isinstance(sv, str) and ev != sv and sv != "best":
            yield Hit(
                c, f"load_best_model_at_end=True with eval_strategy={ev!r} but save_strategy={sv!r}"
            )
        elif ev == "steps" and sv == "steps":
            es, ss = (
                mod.value_of(kwarg(c, "eval_steps"), None),
                mod.value_of(kwarg(c, "save_steps"), 500),
            )
            if isinstance(es, int) and isinstance(ss, int) and es > 0 and ss % es:
                yield Hit(c, f"save_steps={ss} is not a multiple of eval_steps={es}")


def _binding_before(mod: ModuleFacts, name: str, use: ast.AST, calls) -> ast.Call | None:
    """The ``TrainingArguments(...)`` call bound to ``name`` that reaches ``use``: the last
    assignment before it in the same function (a name reused across test methods or
    functions is a different variable in each)."""
    where = enclosing_function(mod, use.lineno)[0]
    best = None
    for v, st in mod.assigns.get(name, []):
        if not (isinstance(v, ast.Call) and v in calls) or st.lineno > use.lineno:
            continue
        if enclosing_function(mod, st.lineno)[0] is not where:
            continue
        if best is None or st.lineno > best[0]:
            best = (st.lineno, v)
    return best[1] if best else None


@rule(
    "LC805",
    "eval-strategy-without-eval-dataset",
    "error",
    HF,
    """Flags a ``Trainer`` built with arguments whose evaluation strategy is ``"steps"`` or
    ``"epoch"`` but no ``eval_dataset``. The Trainer raises ``ValueError`` at construction (older
    versions fail at the first evaluation, hours in).""",
    "pass eval_dataset=... to the Trainer, or set eval_strategy='no'",
)
def eval_no_dataset(mod: ModuleFacts):
    targs = _training_args(mod)
    for t in mod.calls_q(*TRAINERS):
        if has_star_kwargs(t) or kwarg(t, "eval_dataset") is not None:
            continue
        a = kwarg(t, "args")
        args_call = (
            a
            if isinstance(a, ast.Call) and a in targs
            else _binding_before(mod, dotted(a), t, targs)
            if a is not None
            else None
        )
        if args_call is None:
            continue
        ev = _eval_strategy(mod, args_call)
        if ev in ("steps", "epoch"):
            yield Hit(t, f"eval_strategy={ev!r} but the trainer gets no eval_dataset")


@rule(
    "LC806",
    "deprecated-evaluation-strategy",
    "warning",
    HF,
    """Flags ``evaluation_strategy=`` in ``TrainingArguments``: renamed to ``eval_strategy`` in
    transformers 4.41 and removed in 4.46, where it raises ``TypeError``.""",
    "rename evaluation_strategy= to eval_strategy=",
)
def eval_strategy_name(mod: ModuleFacts):
    for c in _training_args(mod):
        if kwarg(c, "evaluation_strategy") is not None:
            yield Hit(c, "evaluation_strategy is deprecated (removed in transformers 4.46)")


@rule(
    "LC807",
    "gradient-checkpointing-with-use-cache",
    "info",
    HF,
    """Flags gradient checkpointing (``gradient_checkpointing_enable()`` or
    ``gradient_checkpointing=True``) while ``use_cache`` is never disabled. The KV cache is
    useless in training and incompatible with checkpointing: transformers warns and turns it off
    on every forward, and some models recompute incorrectly.""",
    "set model.config.use_cache = False when enabling gradient checkpointing",
)
def gc_use_cache(mod: ModuleFacts):
    gc = mod.calls_attr("gradient_checkpointing_enable") + [
        c for c in _training_args(mod) if is_true(mod, kwarg(c, "gradient_checkpointing"))
    ]
    if not gc or not model_ids(mod):
        return  # the model is loaded elsewhere (e.g. TRL loads it with use_cache=False)
    for _, v, _ in _attr_assigned(mod, "use_cache"):
        if mod.value_of(v, None) is False:
            return
    for c, _, _ in pretrained(mod):
        if mod.value_of(kwarg(c, "use_cache"), None) is False:
            return
    yield Hit(gc[0], "gradient checkpointing is enabled but use_cache is never set to False")


@rule(
    "LC808",
    "lora-alpha-r-ratio",
    "info",
    PEFT,
    """Flags ``LoraConfig`` whose ``lora_alpha / r`` is below 0.5 or above 4. The LoRA update is
    scaled by alpha/r; the usual range is 1-2. A tiny ratio makes the adapter learn very slowly
    (looks like a dead run); a large one makes it unstable at the learning rate you tuned.""",
    "set lora_alpha to r or 2*r (e.g. r=16, lora_alpha=32)",
)
def lora_ratio(mod: ModuleFacts):
    for c in mod.calls_q("LoraConfig"):
        r = mod.value_of(kwarg(c, "r"), 8 if kwarg(c, "r") is None else None)
        a = mod.value_of(kwarg(c, "lora_alpha"), 8 if kwarg(c, "lora_alpha") is None else None)
        if isinstance(r, int | float) and isinstance(a, int | float) and r > 0:
            ratio = a / r
            if ratio < 0.5 or ratio > 4:
                yield Hit(c, f"lora_alpha/r = {a}/{r} = {ratio:g}: far from 1-2")


ARCH_MODULES = {
    "llama": {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
    "gpt2": {"c_attn", "c_proj", "c_fc"},
    "bert": {"query", "key", "value", "dense"},
    "distilbert": {"q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2"},
    "t5": {"q", "k", "v", "o", "wi", "wo", "wi_0", "wi_1"},
    "neox": {"query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"},
    "opt": {"q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"},
    "phi2": {"q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"},
    "phi3": {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"},
    "mixtral": {"q_proj", "k_proj", "v_proj", "o_proj", "w1", "w2", "w3", "gate"},
}
ARCH_PATTERNS = [
    (re.compile(r"mixtral", re.I), "mixtral"),
    (re.compile(r"phi-?3", re.I), "phi3"),
    (re.compile(r"phi-?(1|2)", re.I), "phi2"),
    (re.compile(r"distilbert", re.I), "distilbert"),
    (re.compile(r"(^|/)(gpt2|distilgpt2)|dialogpt", re.I), "gpt2"),
    (
        re.compile(r"llama|mistral|qwen|gemma|yi-|smollm|tinyllama|vicuna|zephyr|falcon3", re.I),
        "llama",
    ),
    (re.compile(r"(^|/)(flan-)?t5|/mt5|byt5", re.I), "t5"),
    (re.compile(r"falcon-(7b|40b|rw|1b)|pythia|gpt-neox|bloom|stablelm-base-alpha", re.I), "neox"),
    (re.compile(r"(^|/)opt-", re.I), "opt"),
    (re.compile(r"(^|/)(bert|roberta|xlm-roberta)", re.I), "bert"),
]
ALWAYS_OK = {"lm_head", "embed_tokens", "wte", "score", "classifier"}


def architecture(model_id: str) -> str | None:
    for pat, arch in ARCH_PATTERNS:
        if pat.search(model_id):
            return arch
    return None


@rule(
    "LC809",
    "lora-target-modules-missing",
    "error",
    PEFT,
    """Flags ``LoraConfig(target_modules=[...])`` naming modules that do not exist in the
    architecture of the model loaded in the same file (e.g. ``q_proj`` on GPT-2, whose attention
    is ``c_attn``). PEFT raises "Target modules not found", or with a partial match silently
    adapts only some layers.""",
    "use the module names of this architecture (print(model) to see them) or target_modules='all-linear'",
)
def lora_targets(mod: ModuleFacts):
    ids = model_ids(mod)
    if not ids:
        return
    archs = {architecture(i) for i in ids}
    if len(archs) != 1:
        return
    arch = archs.pop()
    if arch is None:
        return
    known = ARCH_MODULES[arch] | ALWAYS_OK
    for c in mod.calls_q("LoraConfig"):
        tm = mod.value_of(kwarg(c, "target_modules"), None)
        if not isinstance(tm, list) or not all(isinstance(t, str) for t in tm):
            continue
        bad = [t for t in tm if t.rsplit(".", 1)[-1] not in known]
        if bad:
            yield Hit(
                c,
                f"target_modules {bad} do not exist in {ids[0]} ({arch} family has {sorted(ARCH_MODULES[arch])})",
            )


@rule(
    "LC810",
    "qlora-without-kbit-preparation",
    "warning",
    PEFT,
    """Flags a model loaded in 4/8 bit (``load_in_4bit``, ``BitsAndBytesConfig``) and wrapped with
    ``get_peft_model`` without ``prepare_model_for_kbit_training``. Layer norms stay in low
    precision and input gradients are not enabled, so training with gradient checkpointing
    produces no gradient for the adapters or is unstable.""",
    "call model = prepare_model_for_kbit_training(model) before get_peft_model",
)
def qlora_prepare(mod: ModuleFacts):
    quant = bool(mod.calls_q("BitsAndBytesConfig")) or any(
        is_true(mod, kwarg(c, "load_in_4bit")) or is_true(mod, kwarg(c, "load_in_8bit"))
        for c, _, _ in pretrained(mod)
    )
    if not quant or mod.calls_q("prepare_model_for_kbit_training") or _manual_kbit_prep(mod):
        return
    for c in mod.calls_q("get_peft_model"):
        q = mod.resolve(c.func)
        if "." in q and not q.startswith("peft"):
            continue  # another library's wrapper (unsloth's FastLanguageModel) prepares itself
        if c.args and _loaded_unquantized(mod, c.args[0]):
            continue
        yield Hit(
            c, "quantized model wrapped with get_peft_model without prepare_model_for_kbit_training"
        )


QUANT_KW = ("quantization_config", "load_in_4bit", "load_in_8bit")


def _loaded_unquantized(mod: ModuleFacts, arg: ast.AST) -> bool:
    """The nearest earlier binding of ``arg`` is a call with explicit keywords, none of them a
    quantization one."""
    line = getattr(arg, "lineno", 0)
    before = [(st, v) for v, st in mod.assigns.get(dotted(arg), []) if st.lineno < line]
    if not before:
        return False
    st, v = max(before, key=lambda t: t[0].lineno)  # the binding this use sees (straight-line)
    if not isinstance(v, ast.Call) or has_star_kwargs(v):
        return False
    return not any(k.arg in QUANT_KW for k in v.keywords)


def _manual_kbit_prep(mod: ModuleFacts) -> bool:
    """The file freezes the base and casts small parameters to float32 by hand
    (``param.data = param.data.to(torch.float32)``), what prepare_model_for_kbit_training does."""
    for st in mod.nodes(ast.Assign):
        t = st.targets[0]
        v = st.value
        if (
            isinstance(t, ast.Attribute)
            and t.attr == "data"
            and isinstance(v, ast.Call)
            and isinstance(v.func, ast.Attribute)
            and v.func.attr in ("to", "float")
            and (v.func.attr == "float" or any(dtype_name(a) == "float32" for a in v.args))
        ):
            return True
    return False


def _family(mid: str) -> str:
    return mid.rstrip("/").lower()


@rule(
    "LC811",
    "tokenizer-model-mismatch",
    "warning",
    HF,
    """Flags a tokenizer and a model loaded from different literal model ids in the same file.
    Token ids from one vocabulary fed to another model's embeddings give garbage (or index
    errors) without any warning.""",
    "load the tokenizer from the same model id (or checkpoint directory) as the model",
)
def tok_model_mismatch(mod: ModuleFacts):
    m, t = model_ids(mod), tokenizer_ids(mod)
    if len(set(m)) != 1 or len(set(t)) != 1:
        return
    if re.search(r"embed|sentence-transformers", m[0], re.I):
        return  # embedding models often ship without a tokenizer of their own (BERT's)
    if _family(m[0]) != _family(t[0]):
        for c, o, mid in pretrained(mod):
            if mid == t[0] and ("Tokenizer" in o or "Processor" in o):
                yield Hit(c, f"tokenizer from '{t[0]}' but model from '{m[0]}'")
                return


NO_PAD_RE = re.compile(
    r"(^|/)(gpt2|distilgpt2)|llama|mistral|falcon|pythia|gpt-neox|gpt-j|mpt-", re.I
)


@rule(
    "LC812",
    "pad-token-missing",
    "warning",
    HF,
    """Flags padding (``padding=True``/``"max_length"`` or ``DataCollatorWithPadding``) with a
    tokenizer of a model family that ships without a pad token (GPT-2, Llama, Mistral, Falcon,
    Pythia) and no ``pad_token`` ever set. The tokenizer raises "Asking to pad but the tokenizer
    does not have a padding token".""",
    "set tokenizer.pad_token (e.g. a new '<pad>' token, or eos with care for labels) before padding",
)
def pad_missing(mod: ModuleFacts):
    ids = tokenizer_ids(mod)
    if (
        not ids
        or not NO_PAD_RE.search(ids[0])
        or "instruct" in ids[0].lower()
        and "llama-3" in ids[0].lower()
        and False
    ):
        return
    if any(True for _ in _attr_assigned(mod, "pad_token")) or any(
        True for _ in _attr_assigned(mod, "pad_token_id")
    ):
        return
    if mod.calls_attr("add_special_tokens") or any(
        kwarg(c, "pad_token") is not None for c, _, _ in pretrained(mod)
    ):
        return
    for c in mod.calls_q("DataCollatorWithPadding"):
        yield Hit(c, f"DataCollatorWithPadding with '{ids[0]}', which has no pad token")
        return
    for c in mod.calls_with_kw("padding"):
        pad = mod.value_of(kwarg(c, "padding"), None)
        if (
            pad in (True, "longest", "max_length")
            and isinstance(c.func, ast.Name | ast.Attribute)
            and "tok" in dotted(c.func).lower()
        ):
            yield Hit(c, f"padding={pad!r} with '{ids[0]}', which has no pad token")
            return


@rule(
    "LC813",
    "new-tokens-without-resize",
    "warning",
    HF,
    """Flags ``tokenizer.add_tokens([...])`` or ``add_special_tokens({...: "<new>"})`` with
    literal new tokens in a file that loads a model but never calls
    ``model.resize_token_embeddings(len(tokenizer))``. The new ids are past the embedding table:
    CUDA index errors, or garbage embeddings.""",
    "call model.resize_token_embeddings(len(tokenizer)) after adding tokens",
)
def resize_missing(mod: ModuleFacts):
    if (
        mod.calls_attr("resize_token_embeddings")
        or not model_ids(mod)
        and not mod.names_with("model")
    ):
        return
    for c in mod.calls_attr("add_tokens", "add_special_tokens"):
        arg = c.args[0] if c.args else None
        lit = False
        if isinstance(arg, ast.Dict):
            lit = any(
                isinstance(v, ast.Constant) and isinstance(v.value, str) for v in arg.values
            ) or any(isinstance(v, ast.List) for v in arg.values)
        elif isinstance(arg, ast.List | ast.Constant):
            lit = True
        if lit:
            yield Hit(c, "new tokens are added but the model's embeddings are never resized")


@rule(
    "LC814",
    "trust-remote-code",
    "info",
    HF,
    """Flags ``trust_remote_code=True``: it executes Python from the model repository on load.
    Pin a ``revision`` you have reviewed.""",
    "pin revision='<commit sha>' you have reviewed, or use a natively supported architecture",
)
def trust_remote(mod: ModuleFacts):
    for c in mod.calls_with_kw("trust_remote_code"):
        if is_true(mod, kwarg(c, "trust_remote_code")) and kwarg(c, "revision") is None:
            yield Hit(c, f"'{dotted(c.func)}' runs remote code without a pinned revision")


@rule(
    "LC815",
    "seq-classification-pad-id-unset",
    "error",
    HF,
    """Flags a ``...ForSequenceClassification`` model, loaded from a base checkpoint of a family
    without a pad token (GPT-2, Llama, Mistral, Falcon, Pythia...), whose tokenizer gets a new
    ``pad_token`` while ``model.config.pad_token_id`` is never set. Decoder models (GPT-2, Llama) pick the
    last non-pad token for classification using ``config.pad_token_id``; unset, batches larger
    than 1 raise "Cannot handle batch sizes > 1 if no padding token is defined".""",
    "set model.config.pad_token_id = tokenizer.pad_token_id",
)
def seqcls_pad(mod: ModuleFacts):
    # Only base checkpoints of a family whose config has no pad id (gpt2, Llama, Mistral...):
    # a checkpoint given by a variable, or already trained as a classifier/reward model,
    # usually carries pad_token_id in its config.
    cls = [
        c
        for c, o, mid in pretrained(mod)
        if "SequenceClassification" in o
        and mid
        and NO_PAD_RE.search(mid)
        and not re.search(r"classif|reward|rm\b|-rm|sentiment", mid, re.I)
    ]
    if not cls or not any(True for _ in _attr_assigned(mod, "pad_token")):
        return
    if mod.imported("trl"):
        return  # TRL's trainers score sequences with the tokenizer's pad id, not the config's
    if any(True for _ in _attr_assigned(mod, "pad_token_id")) or any(
        kwarg(c, "pad_token_id") is not None for c in cls
    ):
        return
    yield Hit(
        cls[0], "pad_token is set on the tokenizer but model.config.pad_token_id is never set"
    )


@rule(
    "LC816",
    "generate-default-length",
    "warning",
    HF,
    """Flags ``model.generate(...)`` on a causal LM without ``max_new_tokens``, ``max_length`` or
    a ``generation_config``. The default ``max_length=20`` counts the prompt, so outputs are
    silently truncated (often to nothing beyond the prompt).""",
    "pass max_new_tokens=... to generate()",
)
def generate_len(mod: ModuleFacts):
    if not any("CausalLM" in o or "Seq2SeqLM" in o or "LMHead" in o for _, o, _ in pretrained(mod)):
        return
    for c in mod.calls_attr("generate"):
        if any(
            kwarg(c, k) is not None for k in ("max_new_tokens", "max_length", "generation_config")
        ):
            continue
        if any(
            k.arg is None and re.search(r"gen|kwargs|config|params|cfg", dotted(k.value), re.I)
            for k in c.keywords
        ):
            continue
        if not mod.is_model(dotted(c.func.value)):  # type: ignore[attr-defined]
            continue
        if len(c.args) >= 2:
            continue  # vLLM's LLM.generate(prompts, sampling_params): not transformers' generate
        yield Hit(
            c,
            f"'{ast.unparse(c.func)}' without max_new_tokens: output is cut at max_length=20 tokens",
        )


@rule(
    "LC817",
    "generate-max-length-includes-prompt",
    "info",
    HF,
    """Flags ``generate(max_length=...)``: ``max_length`` counts the prompt tokens, so long
    prompts leave little or no room for the answer. ``max_new_tokens`` bounds only the
    generated part.""",
    "use max_new_tokens instead of max_length",
)
def generate_max_length(mod: ModuleFacts):
    for c in mod.calls_attr("generate"):
        if (
            kwarg(c, "max_length") is not None
            and kwarg(c, "max_new_tokens") is None
            and mod.is_model(dotted(c.func.value))
        ):  # type: ignore[attr-defined]
            yield Hit(c, "generate(max_length=...) counts the prompt")


@rule(
    "LC818",
    "optimizer-built-before-peft-wrap",
    "error",
    PEFT,
    """Flags an optimizer constructed from ``model.parameters()`` before ``model =
    get_peft_model(model, ...)`` with no optimizer built afterwards. ``get_peft_model`` freezes
    the base weights and adds new adapter parameters, which the earlier optimizer does not hold:
    nothing is trained while the loss curve looks plausible (dropout noise).""",
    "build the optimizer after get_peft_model, from the wrapped model's trainable parameters",
)
def optimizer_before_peft(mod: ModuleFacts):
    from toolkit.static.engine import OPTIMIZER_NAMES

    wraps = mod.calls_q("get_peft_model")
    if not wraps:
        return
    for sc in mod.scopes:
        wrap_ev = [e for e in sc.events if e.node in wraps]
        if not wrap_ev:
            continue
        opts = [
            e
            for e in sc.events
            if e.q.rsplit(".", 1)[-1] in OPTIMIZER_NAMES and isinstance(e.node, ast.Call)
        ]
        w = wrap_ev[0]
        wrapped = dotted(w.node.args[0]) if w.node.args else ""
        before = [
            o
            for o in opts
            if o.idx < w.idx
            and any(
                isinstance(n, ast.Attribute)
                and n.attr in ("parameters", "named_parameters")
                and dotted(n.value) == wrapped
                for n in ast.walk(o.node)
            )
        ]
        after = [o for o in opts if o.idx > w.idx]
        if before and not after:
            yield Hit(
                before[0].node,
                f"optimizer is built from '{wrapped}.parameters()' before get_peft_model: the LoRA adapters are not in it",
            )


TENSOR_CTORS = ("torch.tensor", "torch.as_tensor", "torch.LongTensor", "torch.from_numpy")


def _shifted(mod: ModuleFacts, expr: ast.AST | None, start: int, depth: int = 0) -> bool:
    """``expr`` is ``x[..., 1:]`` (start=1) / ``x[:, :-1]`` (start=0) on the last axis, possibly
    through ``.contiguous()`` / ``.clone()`` or one assignment."""
    if expr is None or depth > 2:
        return False
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute):
        if expr.func.attr in ("contiguous", "clone", "to", "long"):
            return _shifted(mod, expr.func.value, start, depth + 1)
        if mod.resolve(expr.func) in TENSOR_CTORS and expr.args:
            return _shifted(mod, expr.args[0], start, depth + 1)
        return False
    if isinstance(expr, ast.Call) and mod.resolve(expr.func) in TENSOR_CTORS and expr.args:
        return _shifted(mod, expr.args[0], start, depth + 1)
    if isinstance(expr, ast.Name):
        vals = mod.assigns.get(expr.id, [])
        return len(vals) == 1 and _shifted(mod, vals[0][0], start, depth + 1)
    if not isinstance(expr, ast.Subscript):
        return False
    sl = expr.slice
    if isinstance(sl, ast.Tuple) and sl.elts:
        sl = sl.elts[-1]
    if not isinstance(sl, ast.Slice) or sl.step is not None:
        return False
    lo, hi = mod.value_of(sl.lower, None), mod.value_of(sl.upper, None)
    if start == 1:
        return lo == 1 and sl.upper is None
    return sl.lower is None and hi == -1


@rule(
    "LC819",
    "labels-shifted-for-causal-lm",
    "error",
    ("transformers",),
    """Flags labels shifted by hand (``labels=input_ids[:, 1:]``, with ``input_ids[:, :-1]`` as
    input) passed to a Hugging Face causal LM (``...ForCausalLM``, ``...LMHeadModel``). The model
    shifts ``labels`` itself, so the loss trains every position to predict the token two ahead;
    the loss still falls and generation comes out garbled. Pass ``labels=input_ids`` unshifted
    (use -100 to mask positions).""",
    "pass labels=input_ids (the same tensor as input_ids; the model shifts internally), masking with -100",
)
def labels_shifted_twice(mod: ModuleFacts):
    causal = mod.names_with("causal_lm")
    yield from _shifted_batches(mod, causal)
    if not causal:
        return
    for c in mod.all_calls:
        f = c.func
        callee = dotted(f) if isinstance(f, ast.Name | ast.Attribute) else ""
        if callee not in causal and not (
            isinstance(f, ast.Attribute) and f.attr == "forward" and dotted(f.value) in causal
        ):
            continue
        labels = kwarg(c, "labels")
        if _shifted(mod, labels, 1):
            at = labels  # where the shift is written: the argument, or its one binding
            if isinstance(labels, ast.Name) and len(mod.assigns.get(labels.id, [])) == 1:
                at = mod.assigns[labels.id][0][0]
            yield Hit(
                at,
                f"labels '{ast.unparse(labels)}' are already shifted by one, and '{callee}' (a causal LM) shifts them again: it learns to predict two tokens ahead",
            )


def _shifted_batches(mod: ModuleFacts, causal: set[str]):
    """A batch built as ``{"input_ids": ids[:-1], "labels": ids[1:]}`` (a collate function or a
    dataset) next to a Hugging Face causal LM, which shifts ``labels`` again: the model is
    loaded in this file, in a checked file this one imports, or in one that imports it."""
    if not mod.spells("labels") or not mod.spells("input_ids"):
        return
    if not causal and not (
        mod.program is not None and any(m.causal_lm for m in mod.program.neighbours(mod))
    ):
        return
    for d in mod.nodes(ast.Dict):
        keys = {
            k.value: v
            for k, v in zip(d.keys, d.values, strict=False)
            if isinstance(k, ast.Constant) and isinstance(k.value, str)
        }
        lab, ids = keys.get("labels"), keys.get("input_ids")
        if lab is None or ids is None:
            continue
        if _shifted(mod, lab, 1) and _shifted(mod, ids, 0):
            at = lab
            if isinstance(lab, ast.Name) and len(mod.assigns.get(lab.id, [])) == 1:
                at = mod.assigns[lab.id][0][0]  # where the shift is written
            yield Hit(
                at,
                f"labels '{ast.unparse(lab)}' are shifted by one next to input_ids '{ast.unparse(ids)}', and the causal LM they are fed to shifts labels again: it learns to predict two tokens ahead",
            )
