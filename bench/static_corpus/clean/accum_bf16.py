# ruff: noqa
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, get_cosine_schedule_with_warmup

torch.manual_seed(0)
model_id = "Qwen/Qwen2.5-0.5B"
tokenizer = AutoTokenizer.from_pretrained(model_id)
model = AutoModelForCausalLM.from_pretrained(model_id, torch_dtype=torch.bfloat16).cuda()
model.gradient_checkpointing_enable()
model.config.use_cache = False
model.train()
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.0)
accum_steps = 8
scheduler = get_cosine_schedule_with_warmup(optimizer, 100, 2000)
optimizer.zero_grad(set_to_none=True)
for step, batch in enumerate(train_loader):
    batch = {k: v.cuda(non_blocking=True) for k, v in batch.items()}
    loss = model(**batch).loss / accum_steps
    loss.backward()
    if (step + 1) % accum_steps == 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
model.save_pretrained("out")
