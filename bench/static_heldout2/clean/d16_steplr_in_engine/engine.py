# Follows: Lornatang/SRGAN-PyTorch#1 (StepLR with step_size in epochs, but scheduler.step() called every training step)
import time


def train_one_epoch(model, loader, criterion, optimizer, device, epoch, print_freq=50):
    model.train()
    t0 = time.time()
    for i, (lr_img, hr_img) in enumerate(loader):
        lr_img, hr_img = lr_img.to(device), hr_img.to(device)
        optimizer.zero_grad()
        loss = criterion(model(lr_img), hr_img)
        loss.backward()
        optimizer.step()
        if i % print_freq == 0:
            print(f"[{epoch}][{i}/{len(loader)}] loss {loss.item():.5f} "
                  f"lr {optimizer.param_groups[0]['lr']:.2e} {time.time() - t0:.1f}s")
