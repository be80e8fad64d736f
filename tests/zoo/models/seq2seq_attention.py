"""A GRU encoder-decoder with additive attention in the style of the well-known PyTorch seq2seq
tutorials: a bidirectional encoder, an attention module, a decoder fed one token at a time, and a
Seq2Seq wrapper that writes each step into a preallocated outputs tensor with teacher forcing."""
import random

import torch
import torch.nn as nn
import torch.nn.functional as F


class Encoder(nn.Module):
    def __init__(self, input_dim, emb_dim, enc_hid_dim, dec_hid_dim, dropout):
        super().__init__()
        self.embedding = nn.Embedding(input_dim, emb_dim)
        self.rnn = nn.GRU(emb_dim, enc_hid_dim, bidirectional=True)
        self.fc = nn.Linear(enc_hid_dim * 2, dec_hid_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, src):
        # src = [src len, batch size]
        embedded = self.dropout(self.embedding(src))
        outputs, hidden = self.rnn(embedded)
        # outputs = [src len, batch size, hid dim * num directions]
        # hidden [-2, :, : ] is the last of the forwards RNN
        # hidden [-1, :, : ] is the last of the backwards RNN
        hidden = torch.tanh(self.fc(torch.cat((hidden[-2, :, :], hidden[-1, :, :]), dim=1)))
        return outputs, hidden


class Attention(nn.Module):
    def __init__(self, enc_hid_dim, dec_hid_dim):
        super().__init__()
        self.attn = nn.Linear((enc_hid_dim * 2) + dec_hid_dim, dec_hid_dim)
        self.v = nn.Linear(dec_hid_dim, 1, bias=False)

    def forward(self, hidden, encoder_outputs):
        # hidden = [batch size, dec hid dim]
        # encoder_outputs = [src len, batch size, enc hid dim * 2]
        batch_size = encoder_outputs.shape[1]
        src_len = encoder_outputs.shape[0]

        # repeat decoder hidden state src_len times
        hidden = hidden.unsqueeze(1).repeat(1, src_len, 1)
        encoder_outputs = encoder_outputs.permute(1, 0, 2)
        energy = torch.tanh(self.attn(torch.cat((hidden, encoder_outputs), dim=2)))
        attention = self.v(energy).squeeze(2)
        # attention= [batch size, src len]
        return F.softmax(attention, dim=1)


class Decoder(nn.Module):
    def __init__(self, output_dim, emb_dim, enc_hid_dim, dec_hid_dim, dropout, attention):
        super().__init__()
        self.output_dim = output_dim
        self.attention = attention
        self.embedding = nn.Embedding(output_dim, emb_dim)
        self.rnn = nn.GRU((enc_hid_dim * 2) + emb_dim, dec_hid_dim)
        self.fc_out = nn.Linear((enc_hid_dim * 2) + dec_hid_dim + emb_dim, output_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, input, hidden, encoder_outputs):
        # input = [batch size]
        input = input.unsqueeze(0)
        embedded = self.dropout(self.embedding(input))
        # embedded = [1, batch size, emb dim]
        a = self.attention(hidden, encoder_outputs)
        a = a.unsqueeze(1)
        encoder_outputs = encoder_outputs.permute(1, 0, 2)
        weighted = torch.bmm(a, encoder_outputs)
        weighted = weighted.permute(1, 0, 2)
        rnn_input = torch.cat((embedded, weighted), dim=2)
        output, hidden = self.rnn(rnn_input, hidden.unsqueeze(0))
        # output = [seq len, batch size, dec hid dim * n directions]
        # seq len, n layers and n directions will always be 1 in this decoder, therefore output == hidden
        embedded = embedded.squeeze(0)
        output = output.squeeze(0)
        weighted = weighted.squeeze(0)
        prediction = self.fc_out(torch.cat((output, weighted, embedded), dim=1))
        # prediction = [batch size, output dim]
        return prediction, hidden.squeeze(0)


class Seq2Seq(nn.Module):
    def __init__(self, encoder, decoder, device):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.device = device

    def forward(self, src, trg, teacher_forcing_ratio=0.5):
        # src = [src len, batch size]
        # trg = [trg len, batch size]
        # teacher_forcing_ratio is probability to use teacher forcing
        batch_size = src.shape[1]
        trg_len = trg.shape[0]
        trg_vocab_size = self.decoder.output_dim

        # tensor to store decoder outputs
        outputs = torch.zeros(trg_len, batch_size, trg_vocab_size).to(self.device)

        # encoder_outputs is all hidden states of the input sequence, back and forwards
        # hidden is the final forward and backward hidden states, passed through a linear layer
        encoder_outputs, hidden = self.encoder(src)

        # first input to the decoder is the <sos> tokens
        input = trg[0, :]
        for t in range(1, trg_len):
            # insert input token embedding, previous hidden state and all encoder hidden states
            # receive output tensor (predictions) and new hidden state
            output, hidden = self.decoder(input, hidden, encoder_outputs)
            # place predictions in a tensor holding predictions for each token
            outputs[t] = output
            # decide if we are going to use teacher forcing or not
            teacher_force = random.random() < teacher_forcing_ratio
            # get the highest predicted token from our predictions
            top1 = output.argmax(1)
            # if teacher forcing, use actual next token as next input
            # if not, use predicted token
            input = trg[t] if teacher_force else top1

        return outputs


def init_weights(m):
    for name, param in m.named_parameters():
        if 'weight' in name:
            nn.init.normal_(param.data, mean=0, std=0.01)
        else:
            nn.init.constant_(param.data, 0)


INPUT_DIM, OUTPUT_DIM, TRG_PAD_IDX = 13, 11, 0
device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')


class TeacherForced(nn.Module):
    """The tutorial's training call (teacher forcing always on, so the run is deterministic)."""

    def __init__(self, seq2seq):
        super().__init__()
        self.seq2seq = seq2seq

    def forward(self, src, trg):
        return self.seq2seq(src, trg, teacher_forcing_ratio=1.0)


def make_model():
    attn = Attention(enc_hid_dim=6, dec_hid_dim=5)
    enc = Encoder(INPUT_DIM, emb_dim=4, enc_hid_dim=6, dec_hid_dim=5, dropout=0.0)
    dec = Decoder(OUTPUT_DIM, emb_dim=4, enc_hid_dim=6, dec_hid_dim=5, dropout=0.0, attention=attn)
    model = Seq2Seq(enc, dec, device).to(device)
    model.apply(init_weights)
    return TeacherForced(model)


def loss_fn(model, src, trg):
    criterion = nn.CrossEntropyLoss(ignore_index=TRG_PAD_IDX)
    output = model(src, trg)
    output_dim = output.shape[-1]
    # trg = [(trg len - 1) * batch size], output = [(trg len - 1) * batch size, output dim]
    output = output[1:].view(-1, output_dim)
    trg = trg[1:].view(-1)
    return criterion(output, trg)


def example_batch():
    torch.manual_seed(0)
    src = torch.randint(1, INPUT_DIM, (6, 3))
    trg = torch.randint(1, OUTPUT_DIM, (5, 3))
    trg[4, 1] = TRG_PAD_IDX
    return src, trg


def example_inputs():
    return example_batch()


def decode(model, src, trg):
    """Greedy decoding: no teacher forcing, each step feeds back its own argmax."""
    model.eval()
    with torch.no_grad():
        return model.seq2seq(src, trg, teacher_forcing_ratio=0.0).argmax(-1)
