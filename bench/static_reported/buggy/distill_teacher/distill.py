# After the knowledge-distillation reports of teachers filling up with gradients (and OOM): the
# teacher forward runs inside the graph, not under no_grad, and its output is not detached.
import torch
import torch.nn.functional as F
import torchvision


def distill(loader, epochs=10, T=4.0, alpha=0.9):
    torch.manual_seed(0)
    teacher = torchvision.models.resnet50(weights="IMAGENET1K_V2").eval()
    student = torchvision.models.resnet18(num_classes=1000)
    opt = torch.optim.SGD(student.parameters(), lr=0.05, momentum=0.9)
    student.train()
    for epoch in range(epochs):
        for images, labels in loader:
            teacher_logits = teacher(images)  # expect: LC113
            student_logits = student(images)
            kd = F.kl_div(
                F.log_softmax(student_logits / T, dim=1),
                F.softmax(teacher_logits / T, dim=1),
                reduction="batchmean",
            ) * T * T
            loss = alpha * kd + (1 - alpha) * F.cross_entropy(student_logits, labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
