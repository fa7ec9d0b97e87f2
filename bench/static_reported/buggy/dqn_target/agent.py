# After philtabor/Deep-Q-Learning-Paper-To-Code#9/#16 and datawhalechina/easy-rl#117: the TD
# target is computed from the online network without detach/no_grad (no semi-gradient).
import random
from collections import deque

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class QNet(nn.Module):
    def __init__(self, n_obs: int, n_actions: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_obs, 128), nn.ReLU(), nn.Linear(128, n_actions))

    def forward(self, x):
        return self.net(x)


class Agent:
    def __init__(self, n_obs, n_actions, gamma=0.99, lr=1e-3):
        self.q_net = QNet(n_obs, n_actions)
        self.optimizer = torch.optim.Adam(self.q_net.parameters(), lr=lr)
        self.memory = deque(maxlen=100_000)
        self.gamma = gamma
        self.n_actions = n_actions

    def act(self, state, eps):
        if random.random() < eps:
            return random.randrange(self.n_actions)
        with torch.no_grad():
            return int(self.q_net(torch.as_tensor(state)).argmax())

    def learn(self, batch_size=64):
        batch = random.sample(self.memory, batch_size)
        s, a, r, s2, d = (torch.as_tensor(np.array(x)) for x in zip(*batch))
        q = self.q_net(s.float()).gather(1, a.long().unsqueeze(1)).squeeze(1)
        q_next = self.q_net(s2.float()).max(1)[0]
        q_target = r.float() + self.gamma * q_next * (1 - d.float())  # expect: LC113
        loss = F.mse_loss(q, q_target)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss.item()
