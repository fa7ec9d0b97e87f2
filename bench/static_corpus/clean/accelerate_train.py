# ruff: noqa
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed

accelerator = Accelerator(mixed_precision="bf16", gradient_accumulation_steps=4)
set_seed(0)
model = build_model()
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
for epoch in range(3):
    model.train()
    for batch in train_loader:
        with accelerator.accumulate(model):
            loss = model(**batch).loss
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                accelerator.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad()
accelerator.wait_for_everyone()
if accelerator.is_main_process:
    accelerator.save(accelerator.unwrap_model(model).state_dict(), "model.pt")
