# Follows: philtabor/Deep-Q-Learning-Paper-To-Code#16 ("No gradient required for q_target calculation") and #9
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class QNetwork(nn.Module):
    def __init__(self, obs_dim, n_actions, hidden=128):
        super().__init__()
        self.fc1 = nn.Linear(obs_dim, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, n_actions)

    def forward(self, x):
        return self.out(F.relu(self.fc2(F.relu(self.fc1(x)))))


class DQNAgent:
    def __init__(self, obs_dim, n_actions, gamma=0.99, lr=1e-4, replace_every=1000):
        self.q_eval = QNetwork(obs_dim, n_actions)
        self.q_next = QNetwork(obs_dim, n_actions)
        self.q_next.load_state_dict(self.q_eval.state_dict())
        self.optimizer = torch.optim.Adam(self.q_eval.parameters(), lr=lr)
        self.gamma = gamma
        self.replace_every = replace_every
        self.learn_steps = 0
        self.n_actions = n_actions

    def act(self, obs, eps):
        if np.random.rand() < eps:
            return np.random.randint(self.n_actions)
        with torch.no_grad():
            return self.q_eval(torch.as_tensor(obs, dtype=torch.float32)).argmax().item()

    def learn(self, states, actions, rewards, next_states, dones):
        if self.learn_steps % self.replace_every == 0:
            self.q_next.load_state_dict(self.q_eval.state_dict())
        idx = torch.arange(states.size(0))
        q_pred = self.q_eval(states)[idx, actions]
        with torch.no_grad():
            q_next = self.q_next(next_states).max(dim=1)[0]
            q_next[dones] = 0.0
            q_target = rewards + self.gamma * q_next
        loss = F.mse_loss(q_pred, q_target)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.learn_steps += 1
        return loss.item()
