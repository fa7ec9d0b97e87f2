# Pattern, no specific report (CosineAnnealingLR with T_max in epochs stepped from a per-batch hook; cf. pytorch/pytorch#3814)
class Hook:
    def before_epoch(self, runner):
        pass

    def after_iter(self, runner):
        pass

    def after_epoch(self, runner):
        pass


class LrSchedulerHook(Hook):
    def __init__(self, scheduler):
        self.scheduler = scheduler

    def after_iter(self, runner):
        self.scheduler.step()  # bug: T_max=epochs cosine schedule advanced every iteration (cycles many times per run)


class LoggerHook(Hook):
    def __init__(self, interval=20):
        self.interval = interval

    def after_iter(self, runner):
        if runner.iter % self.interval == 0:
            lr = runner.optimizer.param_groups[0]["lr"]
            print(f"epoch {runner.epoch} iter {runner.iter} loss {runner.last_loss:.4f} lr {lr:.3e}")
