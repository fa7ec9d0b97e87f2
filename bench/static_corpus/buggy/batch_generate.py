# ruff: noqa
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

model_id = "meta-llama/Llama-3.2-1B-Instruct"
tokenizer = AutoTokenizer.from_pretrained(model_id)
tokenizer.pad_token = tokenizer.eos_token
model = AutoModelForCausalLM.from_pretrained(model_id, torch_dtype=torch.bfloat16, device_map="cuda")
prompts = ["Explain transformers.", "What is 2+2?", "Write a haiku about GPUs."]
inputs = tokenizer(prompts, return_tensors="pt", padding=True).to(model.device)  # expect: LC802
with torch.inference_mode():
    out = model.generate(**inputs, do_sample=True, temperature=0)  # expect: LC903, LC816
print(tokenizer.batch_decode(out, skip_special_tokens=True))
