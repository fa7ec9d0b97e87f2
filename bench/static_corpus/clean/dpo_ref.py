# ruff: noqa
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoTokenizer

torch.manual_seed(0)
policy = AutoModelForCausalLM.from_pretrained("Qwen/Qwen2.5-0.5B-Instruct", torch_dtype=torch.bfloat16).cuda()
ref = AutoModelForCausalLM.from_pretrained("Qwen/Qwen2.5-0.5B-Instruct", torch_dtype=torch.float16).cuda()
ref.eval()
policy.train()
opt = torch.optim.AdamW(policy.parameters(), lr=5e-7)


def logps(model, ids, mask):
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    lp = torch.gather(logits.log_softmax(-1), 2, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    return (lp * mask[:, 1:]).sum(-1)


for batch in pref_loader:
    with torch.no_grad():
        ref_c = logps(ref, batch["chosen"], batch["chosen_mask"])
        ref_r = logps(ref, batch["rejected"], batch["rejected_mask"])
    pol_c = logps(policy, batch["chosen"], batch["chosen_mask"])
    pol_r = logps(policy, batch["rejected"], batch["rejected_mask"])
    loss = -F.logsigmoid(0.1 * ((pol_c - ref_c) - (pol_r - ref_r))).mean()
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
    opt.step()
