# Follows: kan-bayashi/ParallelWaveGAN#177 ("set_epoch on DataLoader is needed for distributed training")
import argparse

import torch.distributed as dist
import yaml

from trainer import Trainer


def main(model_fn, dataset_fn):
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    args = ap.parse_args()
    with open(args.config) as f:
        config = yaml.safe_load(f)
    dist.init_process_group("nccl")
    trainer = Trainer(model_fn(config), dataset_fn(config), config)
    trainer.run()
    dist.destroy_process_group()
