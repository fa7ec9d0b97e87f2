# Follows: zju3dv/Vox-Fusion#31 (Adam re-created every optimisation loop, discarding its moment estimates)
import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F


class SDFDecoder(nn.Module):
    def __init__(self, feat_dim=16, hidden=128):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(feat_dim + 3, hidden), nn.Softplus(beta=100),
            nn.Linear(hidden, hidden), nn.Softplus(beta=100),
            nn.Linear(hidden, 1),
        )

    def forward(self, feats, xyz):
        return self.layers(torch.cat([feats, xyz], dim=-1)).squeeze(-1)


def build_optimizer(decoder, embeddings, lr):
    return torch.optim.Adam([
        {"params": decoder.parameters(), "lr": lr},
        {"params": [embeddings], "lr": lr * 10},
    ], betas=(0.9, 0.999))


def fit(decoder, embeddings, sampler, args):
    for it in range(args.iters):
        optimizer = build_optimizer(decoder, embeddings, args.lr)  # bug: new Adam each step resets its state
        idx, xyz, sdf_gt = sampler()
        optimizer.zero_grad()
        pred = decoder(embeddings[idx], xyz)
        loss = F.l1_loss(pred, sdf_gt)
        loss.backward()
        optimizer.step()
        if it % 100 == 0:
            print(f"iter {it}: sdf loss {loss.item():.5f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--num-voxels", type=int, default=10000)
    args = ap.parse_args()
    decoder = SDFDecoder()
    embeddings = nn.Parameter(torch.zeros(args.num_voxels, 16))

    def sampler(n=4096):
        idx = torch.randint(0, args.num_voxels, (n,))
        xyz = torch.rand(n, 3)
        return idx, xyz, xyz.norm(dim=-1) - 0.5

    fit(decoder, embeddings, sampler, args)
