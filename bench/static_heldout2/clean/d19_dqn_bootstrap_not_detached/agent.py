# Follows: datawhalechina/easy-rl#117 ("TD target does not have detach(), which is equivalent to not using semi-gradient method")
import random
from collections import deque

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class QNet(nn.Module):
    def __init__(self, obs_dim, n_actions, hidden=128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(obs_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, n_actions))

    def forward(self, obs):
        return self.net(obs)


class DQNAgent:
    def __init__(self, obs_dim, n_actions, gamma=0.99, lr=1e-3, buffer_size=50_000, batch_size=64, device="cpu"):
        self.q = QNet(obs_dim, n_actions).to(device)
        self.opt = torch.optim.Adam(self.q.parameters(), lr=lr)
        self.buffer = deque(maxlen=buffer_size)
        self.gamma, self.batch_size, self.n_actions, self.device = gamma, batch_size, n_actions, device

    def act(self, obs, eps):
        if random.random() < eps:
            return random.randrange(self.n_actions)
        with torch.no_grad():
            return self.q(torch.as_tensor(obs, dtype=torch.float32, device=self.device)).argmax().item()

    def remember(self, *transition):
        self.buffer.append(transition)

    def _sample(self):
        batch = random.sample(self.buffer, self.batch_size)
        obs, act, rew, next_obs, done = map(np.array, zip(*batch))
        to_t = lambda a, dt=torch.float32: torch.as_tensor(a, dtype=dt, device=self.device)
        return to_t(obs), to_t(act, torch.long), to_t(rew), to_t(next_obs), to_t(done)

    def learn(self):
        if len(self.buffer) < self.batch_size:
            return None
        obs, act, rew, next_obs, done = self._sample()
        q_sa = self.q(obs).gather(1, act.unsqueeze(1)).squeeze(1)
        with torch.no_grad():
            next_q = self.q(next_obs).max(dim=1).values
        target = rew + self.gamma * (1.0 - done) * next_q
        loss = F.smooth_l1_loss(q_sa, target)
        self.opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.q.parameters(), 10.0)
        self.opt.step()
        return loss.item()
