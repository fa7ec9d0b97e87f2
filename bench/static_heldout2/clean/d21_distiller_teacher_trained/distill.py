# Follows: haitongli/knowledge-distillation-pytorch#25 (teacher in eval() mode but still receives gradient updates)
import torch
import torch.nn as nn
import torch.nn.functional as F


class Distiller(nn.Module):
    def __init__(self, student, teacher, temperature=4.0, alpha=0.9):
        super().__init__()
        self.student = student
        self.teacher = teacher
        self.T = temperature
        self.alpha = alpha

    def train(self, mode=True):
        super().train(mode)
        self.teacher.eval()  # keep teacher BN statistics / dropout frozen
        return self

    def forward(self, x, y):
        s_logits = self.student(x)
        with torch.no_grad():
            t_logits = self.teacher(x)
        kd = F.kl_div(F.log_softmax(s_logits / self.T, dim=1), F.softmax(t_logits / self.T, dim=1),
                      reduction="batchmean") * self.T ** 2
        ce = F.cross_entropy(s_logits, y)
        return self.alpha * kd + (1 - self.alpha) * ce, s_logits
