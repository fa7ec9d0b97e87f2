import argparse

import torch
import torch.nn as nn

from seq2seq_trainer import Seq2SeqTrainer


class TransformerNMT(nn.Module):
    def __init__(self, vocab, d_model=512, nhead=8, layers=6, dropout=0.1):
        super().__init__()
        self.emb = nn.Embedding(vocab, d_model)
        self.transformer = nn.Transformer(d_model, nhead, layers, layers, dropout=dropout, batch_first=True)
        self.proj = nn.Linear(d_model, vocab)

    def forward(self, src, tgt_in):
        mask = self.transformer.generate_square_subsequent_mask(tgt_in.size(1)).to(src.device)
        h = self.transformer(self.emb(src), self.emb(tgt_in), tgt_mask=mask)
        return self.proj(h)


def main(train_loader, valid_loader, vocab_size, pad_idx):
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--lr", type=float, default=5e-4)
    args = ap.parse_args()
    model = TransformerNMT(vocab_size).cuda()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.98))
    Seq2SeqTrainer(model, opt, pad_idx, "cuda").train(train_loader, valid_loader, args.epochs)
