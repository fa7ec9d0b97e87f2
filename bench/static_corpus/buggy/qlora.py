# ruff: noqa
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig, Trainer, TrainingArguments

model_id = "mistralai/Mistral-7B-v0.1"
bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)
tokenizer = AutoTokenizer.from_pretrained(model_id)
model = AutoModelForCausalLM.from_pretrained(model_id, quantization_config=bnb)
model.gradient_checkpointing_enable()  # expect: LC807
model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))  # expect: LC810
enc = tokenizer(texts, padding=True, truncation=True, max_length=1024)  # expect: LC812
args = TrainingArguments(output_dir="qlora-out", per_device_train_batch_size=4, gradient_accumulation_steps=4,  # expect: LC804
                         learning_rate=2e-4, num_train_epochs=2, bf16=True, load_best_model_at_end=True)
Trainer(model=model, args=args, train_dataset=train_ds).train()
