# ruff: noqa
import torch
from datasets import load_dataset
from peft import LoraConfig, get_peft_model
from transformers import (AutoModelForCausalLM, AutoTokenizer, DataCollatorForLanguageModeling,
                          Trainer, TrainingArguments)

model_id = "gpt2"
tokenizer = AutoTokenizer.from_pretrained(model_id)
tokenizer.pad_token = tokenizer.eos_token  # expect: LC801
model = AutoModelForCausalLM.from_pretrained(model_id)
lora = LoraConfig(r=64, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")  # expect: LC809, LC808
model = get_peft_model(model, lora)
ds = load_dataset("tatsu-lab/alpaca", split="train").map(lambda b: tokenizer(b["text"], truncation=True, max_length=512), batched=True)
args = TrainingArguments(  # expect: LC404, LC806
    output_dir="out",
    per_device_train_batch_size=8,
    learning_rate=2e-4,
    num_train_epochs=1,
    fp16=True,
    bf16=True,
    evaluation_strategy="steps",
    eval_steps=200,
)
trainer = Trainer(model=model, args=args, train_dataset=ds, data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False))  # expect: LC805
trainer.train()
