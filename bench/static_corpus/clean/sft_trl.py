# ruff: noqa
from datasets import load_dataset
from peft import LoraConfig
from trl import SFTConfig, SFTTrainer

dataset = load_dataset("trl-lib/Capybara", split="train")
peft_config = LoraConfig(r=32, lora_alpha=64, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
args = SFTConfig(output_dir="Qwen2.5-0.5B-SFT", per_device_train_batch_size=8, gradient_accumulation_steps=2,
                 learning_rate=1e-4, num_train_epochs=1, bf16=True, gradient_checkpointing=True, logging_steps=10, seed=42)
trainer = SFTTrainer(model="Qwen/Qwen2.5-0.5B", args=args, train_dataset=dataset, peft_config=peft_config)
trainer.train()
