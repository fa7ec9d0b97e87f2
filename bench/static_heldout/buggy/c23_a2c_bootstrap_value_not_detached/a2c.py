# Follows: datawhalechina/easy-rl PR #117 ("TD target does not have detach(), which is equivalent to not using semi-gradient")
import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Categorical


class ActorCritic(nn.Module):
    def __init__(self, obs_dim, n_actions, hidden=256):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh())
        self.pi = nn.Linear(hidden, n_actions)
        self.v = nn.Linear(hidden, 1)

    def forward(self, obs):
        h = self.body(obs)
        return Categorical(logits=self.pi(h)), self.v(h).squeeze(-1)


def compute_loss(model, obs, actions, rewards, next_obs, dones, gamma, ent_coef=0.01):
    dist, values = model(obs)
    _, next_values = model(next_obs)
    td_target = rewards + gamma * next_values * (1.0 - dones)  # bug: bootstrapped value keeps its graph, critic gets gradient through the target
    advantage = td_target - values
    policy_loss = -(dist.log_prob(actions) * advantage.detach()).mean()
    value_loss = F.mse_loss(values, td_target)
    return policy_loss + 0.5 * value_loss - ent_coef * dist.entropy().mean()


def train(env_fn, args):
    env = env_fn()
    model = ActorCritic(env.observation_space.shape[0], env.action_space.n)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    obs, _ = env.reset(seed=args.seed)
    for update in range(args.updates):
        batch = {"obs": [], "act": [], "rew": [], "next": [], "done": []}
        for _ in range(args.n_steps):
            o = torch.as_tensor(obs, dtype=torch.float32)
            with torch.no_grad():
                a = model(o)[0].sample().item()
            nxt, r, term, trunc, _ = env.step(a)
            for k, v in zip(batch, (o, a, r, torch.as_tensor(nxt, dtype=torch.float32), float(term))):
                batch[k].append(v)
            obs = env.reset()[0] if (term or trunc) else nxt
        loss = compute_loss(model, torch.stack(batch["obs"]), torch.tensor(batch["act"]), torch.tensor(batch["rew"]),
                            torch.stack(batch["next"]), torch.tensor(batch["done"]), args.gamma)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        optimizer.step()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--lr", type=float, default=7e-4)
    ap.add_argument("--gamma", type=float, default=0.99)
    ap.add_argument("--n-steps", type=int, default=5)
    ap.add_argument("--updates", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    import gymnasium as gym
    train(lambda: gym.make("CartPole-v1"), ap.parse_args())
