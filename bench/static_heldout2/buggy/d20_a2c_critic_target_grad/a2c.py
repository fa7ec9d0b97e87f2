# Follows: boyu-ai/Hands-on-RL#28 (Actor-Critic TD target must not produce gradients for the value function)
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import Categorical


class ActorCritic(nn.Module):
    def __init__(self, obs_dim, n_actions, hidden=128):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh())
        self.pi = nn.Linear(hidden, n_actions)
        self.v = nn.Linear(hidden, 1)

    def forward(self, obs):
        h = self.body(obs)
        return self.pi(h), self.v(h).squeeze(-1)


class A2C:
    def __init__(self, obs_dim, n_actions, gamma=0.98, lr=1e-3, ent_coef=0.01, vf_coef=0.5, device="cpu"):
        self.net = ActorCritic(obs_dim, n_actions).to(device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr)
        self.gamma, self.ent_coef, self.vf_coef, self.device = gamma, ent_coef, vf_coef, device

    def take_action(self, obs):
        logits, _ = self.net(torch.as_tensor(obs, dtype=torch.float32, device=self.device))
        return Categorical(logits=logits).sample().item()

    def update(self, transitions):
        t = {k: torch.as_tensor(v, dtype=torch.float32, device=self.device) for k, v in transitions.items()}
        logits, values = self.net(t["states"])
        _, next_values = self.net(t["next_states"])
        td_target = t["rewards"] + self.gamma * next_values * (1 - t["dones"])  # bug: target not detached, critic also chases its own bootstrap
        advantage = (td_target - values).detach()
        dist = Categorical(logits=logits)
        actor_loss = -(dist.log_prob(t["actions"].long()) * advantage).mean()
        critic_loss = F.mse_loss(values, td_target)
        loss = actor_loss + self.vf_coef * critic_loss - self.ent_coef * dist.entropy().mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return actor_loss.item(), critic_loss.item()


def train(env, agent, num_episodes=500):
    returns = []
    for ep in range(num_episodes):
        obs, _ = env.reset()
        buf = {"states": [], "actions": [], "rewards": [], "next_states": [], "dones": []}
        done, ep_ret = False, 0.0
        while not done:
            a = agent.take_action(obs)
            nxt, r, term, trunc, _ = env.step(a)
            done = term or trunc
            for k, v in zip(buf, (obs, a, r, nxt, float(term))):
                buf[k].append(v)
            obs, ep_ret = nxt, ep_ret + r
        agent.update(buf)
        returns.append(ep_ret)
    return returns
