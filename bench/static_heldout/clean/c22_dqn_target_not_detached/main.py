import argparse

import gymnasium as gym
import torch

from agent import DQNAgent


def run(args, buffer):
    env = gym.make("CartPole-v1")
    agent = DQNAgent(env.observation_space.shape[0], env.action_space.n, lr=args.lr)
    eps = 1.0
    for episode in range(args.episodes):
        obs, _ = env.reset()
        done, score = False, 0.0
        while not done:
            action = agent.act(obs, eps)
            nxt, reward, term, trunc, _ = env.step(action)
            done = term or trunc
            buffer.store(obs, action, reward, nxt, term)
            obs, score = nxt, score + reward
            if len(buffer) >= args.batch_size:
                s, a, r, s2, d = (torch.as_tensor(x) for x in buffer.sample(args.batch_size))
                agent.learn(s.float(), a.long(), r.float(), s2.float(), d.bool())
        eps = max(0.01, eps * 0.995)
        print(f"episode {episode} score {score:.1f} eps {eps:.3f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=500)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--batch-size", type=int, default=64)
    run(ap.parse_args(), buffer=None)
