# Follows: vinhkhuc/PyTorch-Mini-Tutorials#1 (Softmax module at the end of the model, loss is CrossEntropyLoss)
from .models import build_classifier

__all__ = ["build_classifier"]
