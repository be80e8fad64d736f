"""A bidirectional LSTM text classifier in the style of the popular sentiment-analysis tutorials:
padded batches packed with pack_padded_sequence, the last forward and backward hidden states
concatenated, dropout, and a padding index on the embedding."""
import torch
import torch.nn as nn

PAD_IDX = 1


class RNN(nn.Module):
    def __init__(self, vocab_size, embedding_dim, hidden_dim, output_dim, n_layers, bidirectional, dropout,
                 pad_idx):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_idx)
        self.rnn = nn.LSTM(embedding_dim,
                           hidden_dim,
                           num_layers=n_layers,
                           bidirectional=bidirectional,
                           dropout=dropout)
        self.fc = nn.Linear(hidden_dim * 2, output_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, text, text_lengths):
        # text = [sent len, batch size]
        embedded = self.dropout(self.embedding(text))
        # embedded = [sent len, batch size, emb dim]

        # pack sequence
        # lengths need to be on CPU!
        packed_embedded = nn.utils.rnn.pack_padded_sequence(embedded, text_lengths.to('cpu'))
        packed_output, (hidden, cell) = self.rnn(packed_embedded)

        # unpack sequence
        output, output_lengths = nn.utils.rnn.pad_packed_sequence(packed_output)
        # output = [sent len, batch size, hid dim * num directions]
        # output over padding tokens are zero tensors

        # hidden = [num layers * num directions, batch size, hid dim]
        # concat the final forward (hidden[-2,:,:]) and backward (hidden[-1,:,:]) hidden layers
        # and apply dropout
        hidden = self.dropout(torch.cat((hidden[-2, :, :], hidden[-1, :, :]), dim=1))
        # hidden = [batch size, hid dim * num directions]
        return self.fc(hidden)


def binary_accuracy(preds, y):
    """
    Returns accuracy per batch, i.e. if you get 8/10 right, this returns 0.8, NOT 8
    """
    # round predictions to the closest integer
    rounded_preds = torch.round(torch.sigmoid(preds))
    correct = (rounded_preds == y).float()  # convert into float for division
    acc = correct.sum() / len(correct)
    return acc


def count_parameters(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def make_model():
    model = RNN(vocab_size=25, embedding_dim=8, hidden_dim=6, output_dim=1, n_layers=2, bidirectional=True,
                dropout=0.0, pad_idx=PAD_IDX)
    model.embedding.weight.data[PAD_IDX] = torch.zeros(8)
    assert count_parameters(model) > 0
    return model


def loss_fn(model, text, text_lengths, label):
    criterion = nn.BCEWithLogitsLoss()
    predictions = model(text, text_lengths).squeeze(1)
    return criterion(predictions, label)


def example_batch():
    torch.manual_seed(0)
    lengths = torch.tensor([7, 5, 4, 2])  # sorted, longest first, as the packing expects
    text = torch.randint(2, 25, (7, 4))
    for column, length in enumerate(lengths.tolist()):
        text[length:, column] = PAD_IDX
    label = torch.tensor([1., 0., 1., 0.])
    return text, lengths, label


def example_inputs():
    return example_batch()[:2]


def probe(model, text, text_lengths):
    """The tutorial's accuracy metric, computed on the model's predictions."""
    return binary_accuracy(model(text, text_lengths).squeeze(1), torch.tensor([1., 0., 1., 0.]))
