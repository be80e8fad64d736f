"""A character-level RNN in the style of spro/char-rnn.pytorch: one character per step through an
Embedding, a multi-layer GRU/LSTM and a Linear decoder; hidden state from weight.new_zeros; a
training loop that sums the loss over the chunk; generation by sampling from output.div(t).exp()."""
import string

import torch
import torch.nn as nn

all_characters = string.printable
n_characters = len(all_characters)


def char_tensor(string):
    """Turn a string into a LongTensor of character indices."""
    tensor = torch.zeros(len(string)).long()
    for c in range(len(string)):
        try:
            tensor[c] = all_characters.index(string[c])
        except ValueError:
            continue
    return tensor


class CharRNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size, model="gru", n_layers=1):
        super(CharRNN, self).__init__()
        self.model = model.lower()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.output_size = output_size
        self.n_layers = n_layers

        self.encoder = nn.Embedding(input_size, hidden_size)
        if self.model == "gru":
            self.rnn = nn.GRU(hidden_size, hidden_size, n_layers)
        elif self.model == "lstm":
            self.rnn = nn.LSTM(hidden_size, hidden_size, n_layers)
        self.decoder = nn.Linear(hidden_size, output_size)

    def forward(self, input, hidden):
        batch_size = input.size(0)
        encoded = self.encoder(input)
        output, hidden = self.rnn(encoded.view(1, batch_size, -1), hidden)
        output = self.decoder(output.view(batch_size, -1))
        return output, hidden

    def init_hidden(self, batch_size):
        weight = next(self.parameters())
        if self.model == "lstm":
            return (weight.new_zeros(self.n_layers, batch_size, self.hidden_size),
                    weight.new_zeros(self.n_layers, batch_size, self.hidden_size))
        return weight.new_zeros(self.n_layers, batch_size, self.hidden_size)


def generate(decoder, prime_str='A', predict_len=100, temperature=0.8, greedy=False):
    hidden = decoder.init_hidden(1)
    prime_input = char_tensor(prime_str).unsqueeze(0)
    predicted = prime_str

    # Use priming string to "build up" hidden state
    for p in range(len(prime_str) - 1):
        _, hidden = decoder(prime_input[:, p], hidden)
    inp = prime_input[:, -1]

    for p in range(predict_len):
        output, hidden = decoder(inp, hidden)

        # Sample from the network as a multinomial distribution (or take the most likely character)
        output_dist = output.data.view(-1).div(temperature).exp()
        if greedy:
            top_i = output_dist.argmax().item()
        else:
            top_i = torch.multinomial(output_dist, 1)[0].item()

        # Add predicted character to string and use as next input
        predicted_char = all_characters[top_i]
        predicted += predicted_char
        inp = char_tensor(predicted_char).unsqueeze(0)

    return predicted


class GRUAndLSTM(nn.Module):
    """Both cell types of the script's --model option, one test model."""

    def __init__(self):
        super().__init__()
        self.gru = CharRNN(n_characters, 12, n_characters, model="gru", n_layers=2)
        self.lstm = CharRNN(n_characters, 10, n_characters, model="lstm", n_layers=2)

    def forward(self, input, gru_hidden, lstm_hidden):
        gru_output, gru_hidden = self.gru(input, gru_hidden)
        lstm_output, lstm_hidden = self.lstm(input, lstm_hidden)
        return gru_output + lstm_output, gru_hidden, lstm_hidden


def make_model():
    return GRUAndLSTM()


def loss_fn(model, inp, target, chunk_len=5):
    criterion = nn.CrossEntropyLoss()
    loss = 0
    for decoder in (model.gru, model.lstm):
        hidden = decoder.init_hidden(inp.size(0))
        for c in range(chunk_len):
            output, hidden = decoder(inp[:, c], hidden)
            loss += criterion(output.view(inp.size(0), -1), target[:, c])
    return loss / chunk_len


def example_batch():
    chunk = torch.stack([char_tensor("hello world"), char_tensor("char rnn!!!")])
    return chunk[:, :-1], chunk[:, 1:]


def example_inputs():
    """One step: the chunk's first characters and random hidden states."""
    torch.manual_seed(0)
    inp, _ = example_batch()
    gru_hidden = torch.randn(2, 2, 12)
    lstm_hidden = (torch.randn(2, 2, 10), torch.randn(2, 2, 10))
    return inp[:, 0], gru_hidden, lstm_hidden


def decode(model, input, gru_hidden, lstm_hidden):
    return generate(model.gru, prime_str="he", predict_len=6, greedy=True) + \
        generate(model.lstm, prime_str="ch", predict_len=6, greedy=True)


def sample(model, input, gru_hidden, lstm_hidden):
    return generate(model.lstm, prime_str="x", predict_len=4, temperature=0.8)
