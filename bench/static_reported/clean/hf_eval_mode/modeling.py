# After huggingface/transformers#1703: from_pretrained returns the model in eval mode; a custom
# loop that never calls model.train() fine-tunes with dropout off.
from transformers import AutoModelForSequenceClassification, AutoTokenizer


def load_model(name: str, num_labels: int):
    tokenizer = AutoTokenizer.from_pretrained(name)
    model = AutoModelForSequenceClassification.from_pretrained(name, num_labels=num_labels)
    return tokenizer, model
