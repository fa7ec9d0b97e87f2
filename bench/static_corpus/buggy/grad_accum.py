# ruff: noqa
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, get_linear_schedule_with_warmup

torch.manual_seed(42)
model_id = "Qwen/Qwen2.5-0.5B"
tokenizer = AutoTokenizer.from_pretrained(model_id)
model = AutoModelForCausalLM.from_pretrained(model_id, torch_dtype=torch.bfloat16).cuda()
model.train()
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
accum_steps = 16
scheduler = get_linear_schedule_with_warmup(optimizer, 100, 5000)
for step, batch in enumerate(train_loader):
    batch = {k: v.cuda() for k, v in batch.items()}
    optimizer.zero_grad()  # expect: LC102
    out = model(**batch)
    out.loss.backward()  # expect: LC108
    if (step + 1) % accum_steps == 0:
        optimizer.step()
        scheduler.step()
