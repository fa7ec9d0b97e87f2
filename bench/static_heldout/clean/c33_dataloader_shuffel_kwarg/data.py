# Pattern, no specific report (misspelled DataLoader keyword: TypeError unexpected keyword argument)
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset


class ReviewsDataset(Dataset):
    def __init__(self, csv_path, tokenizer, max_len=256):
        df = pd.read_csv(csv_path)
        self.texts = df["review"].tolist()
        self.labels = df["sentiment"].map({"negative": 0, "positive": 1}).tolist()
        self.tokenizer = tokenizer
        self.max_len = max_len

    def __len__(self):
        return len(self.texts)

    def __getitem__(self, idx):
        enc = self.tokenizer(self.texts[idx], truncation=True, max_length=self.max_len, padding="max_length", return_tensors="pt")
        item = {k: v.squeeze(0) for k, v in enc.items()}
        item["labels"] = torch.tensor(self.labels[idx])
        return item


def create_loaders(train_csv, val_csv, tokenizer, batch_size=16):
    train_loader = DataLoader(ReviewsDataset(train_csv, tokenizer), batch_size=batch_size, shuffle=True, num_workers=2)
    val_loader = DataLoader(ReviewsDataset(val_csv, tokenizer), batch_size=batch_size * 2, num_workers=2)
    return train_loader, val_loader
