# After huggingface/transformers#32944 (fixed in docs by #44642): labels pre-shifted by the user
# and shifted again inside the causal LM, so it trains next-next-token prediction.
import torch
from torch.utils.data import DataLoader
from transformers import AutoModelForCausalLM, AutoTokenizer


def collate(tokenizer, texts):
    enc = tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=512)
    return enc["input_ids"], enc["attention_mask"]


def main():
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained("gpt2")
    tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained("gpt2")
    model.train()
    texts = [line.strip() for line in open("corpus.txt")]
    loader = DataLoader(texts, batch_size=8, shuffle=True, collate_fn=lambda b: collate(tokenizer, b))
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5)
    for input_ids, attention_mask in loader:
        out = model(
            input_ids=input_ids[:, :-1],
            attention_mask=attention_mask[:, :-1],
            labels=input_ids[:, 1:],  # expect: LC819
        )
        out.loss.backward()
        opt.step()
        opt.zero_grad()


if __name__ == "__main__":
    main()
