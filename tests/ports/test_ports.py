"""Whole models written in PyTorch and ported by changing the imports only.

`MODELS` below is PyTorch source: it is executed once under `import torch` and once under
`import avalon as torch` (plus `avalon.nn` / `avalon.nn.functional`), nothing else changed. For each
model the PyTorch weights are loaded into the Avalon model; then the forward outputs agree in train
mode (dropout 0) and in eval mode (dropout > 0, switched off), every parameter gradient agrees, and
after a training step (one SGD update) the BatchNorm running statistics and the updated parameters
agree too. Only the training step itself is written differently:
`loss, grads = avalon.grad(loss_fn, model, *batch); opt.step(grads[0])`.
"""
import numpy as np
import pytest

import avalon
import avalon.optim

torch = pytest.importorskip("torch")

# PyTorch warns about mixing boolean padding masks with float attention masks, which both accept
pytestmark = [pytest.mark.filterwarnings("ignore:Support for mismatched"),
              pytest.mark.filterwarnings("ignore:enable_nested_tensor")]

RTOL, ATOL = 1e-4, 1e-5

TORCH_IMPORTS = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
AVALON_IMPORTS = "import avalon as torch\nimport avalon.nn as nn\nimport avalon.nn.functional as F\n"

MODELS = '''
PAD = 0


class MLP(nn.Module):
    def __init__(self, dropout=0.0):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Dropout(dropout), nn.Linear(32, 16), nn.Tanh(),
                                 nn.Linear(16, 5))

    def forward(self, x):
        return self.net(x)


def classification_loss(model, x, y):
    return F.cross_entropy(model(x), y)


class LeNet5(nn.Module):
    def __init__(self, dropout=0.0):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, kernel_size=5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = self.dropout(F.relu(self.fc1(x)))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class BasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, width=4, num_classes=10, dropout=0.0):
        super().__init__()
        self.in_planes = width
        self.conv1 = nn.Conv2d(3, width, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.layer1 = self._make_layer(width, 2, stride=1)
        self.layer2 = self._make_layer(2 * width, 2, stride=2)
        self.layer3 = self._make_layer(4 * width, 2, stride=2)
        self.layer4 = self._make_layer(8 * width, 2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(8 * width, num_classes)

    def _make_layer(self, planes, blocks, stride):
        layers = []
        for s in [stride] + [1] * (blocks - 1):
            layers.append(BasicBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = torch.flatten(self.avgpool(out), 1)
        return self.fc(self.dropout(out))


class Generator(nn.Module):
    def __init__(self, nz=8, ngf=4, nc=3):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, z):
        return self.main(z)


class Discriminator(nn.Module):
    def __init__(self, nc=3, ndf=4):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False), nn.Sigmoid())

    def forward(self, x):
        return self.main(x).view(-1, 1).squeeze(1)


class DCGAN(nn.Module):
    def __init__(self):
        super().__init__()
        self.generator = Generator()
        self.discriminator = Discriminator()

    def forward(self, z):
        return self.discriminator(self.generator(z))


def gan_loss(model, z, real, labels):
    fake_score = model(z)
    real_score = model.discriminator(real)
    criterion = nn.BCELoss()
    return criterion(fake_score, labels) + criterion(real_score, 1 - labels)


class RecurrentLM(nn.Module):
    def __init__(self, cell="LSTM", vocab=20, embed=8, hidden=12, dropout=0.0):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed, padding_idx=PAD)
        self.drop = nn.Dropout(dropout)
        rnn = nn.LSTM if cell == "LSTM" else nn.GRU
        self.rnn = rnn(embed, hidden, num_layers=2, dropout=dropout, batch_first=True)
        self.decoder = nn.Linear(hidden, vocab)

    def forward(self, tokens, state=None):
        emb = self.drop(self.embedding(tokens))
        out, _ = self.rnn(emb, state)
        return self.decoder(self.drop(out))


def lm_loss(model, tokens, targets):
    logits = model(tokens)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=PAD)


class TransformerClassifier(nn.Module):
    def __init__(self, vocab=20, d_model=16, nhead=2, layers=2, classes=3, max_len=16, dropout=0.0):
        super().__init__()
        self.embedding = nn.Embedding(vocab, d_model, padding_idx=PAD)
        self.position = nn.Parameter(torch.randn(1, max_len, d_model) * 0.1)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward=32, dropout=dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, classes)

    def forward(self, tokens):
        padding = tokens == PAD
        x = self.embedding(tokens) + self.position[:, :tokens.size(1)]
        x = self.encoder(x, src_key_padding_mask=padding)
        keep = (~padding).float().unsqueeze(-1)
        pooled = (x * keep).sum(dim=1) / keep.sum(dim=1)
        return self.head(pooled)


class Seq2SeqTransformer(nn.Module):
    def __init__(self, vocab=20, d_model=16, nhead=2, dropout=0.0):
        super().__init__()
        self.src_embedding = nn.Embedding(vocab, d_model, padding_idx=PAD)
        self.tgt_embedding = nn.Embedding(vocab, d_model, padding_idx=PAD)
        self.transformer = nn.Transformer(d_model, nhead, num_encoder_layers=1, num_decoder_layers=1,
                                          dim_feedforward=32, dropout=dropout, batch_first=True)
        self.generator = nn.Linear(d_model, vocab)

    def forward(self, src, tgt):
        tgt_mask = nn.Transformer.generate_square_subsequent_mask(tgt.size(1))
        out = self.transformer(self.src_embedding(src) * 4.0, self.tgt_embedding(tgt) * 4.0, tgt_mask=tgt_mask,
                               src_key_padding_mask=src == PAD, tgt_key_padding_mask=tgt == PAD,
                               memory_key_padding_mask=src == PAD)
        return self.generator(out)


def seq2seq_loss(model, src, tgt, targets):
    logits = model(src, tgt)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=PAD,
                           label_smoothing=0.1)


class VAE(nn.Module):
    def __init__(self, features=36, hidden=16, latent=4, dropout=0.0):
        super().__init__()
        self.fc1 = nn.Linear(features, hidden)
        self.fc21 = nn.Linear(hidden, latent)
        self.fc22 = nn.Linear(hidden, latent)
        self.fc3 = nn.Linear(latent, hidden)
        self.fc4 = nn.Linear(hidden, features)
        self.dropout = nn.Dropout(dropout)

    def encode(self, x):
        h = self.dropout(F.relu(self.fc1(x)))
        return self.fc21(h), self.fc22(h)

    def decode(self, z):
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

    def forward(self, x, eps):
        mu, logvar = self.encode(x)
        z = mu + eps * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar


def vae_loss(model, x, eps):
    recon, mu, logvar = model(x, eps)
    bce = F.binary_cross_entropy(recon, x, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld
'''


def _namespace(imports):
    namespace = {}
    exec(compile(imports + MODELS, "<ported models>", "exec"), namespace)
    return namespace


TORCH_NS = _namespace(TORCH_IMPORTS)
AVALON_NS = _namespace(AVALON_IMPORTS)


def _rng(seed=0):
    return np.random.default_rng(seed)


def _tokens(shape, seed, vocab=20):
    """Token ids in [1, vocab) with trailing padding (never a whole row, never the first position)."""
    rng = _rng(seed)
    tokens = rng.integers(1, vocab, shape)
    for row, length in enumerate(rng.integers(shape[1] // 2, shape[1] + 1, shape[0])):
        tokens[row, length:] = 0
    return tokens


def _f32(*shape, seed=0):
    return _rng(seed).standard_normal(shape).astype(np.float32)


# name: (class, constructor kwargs, loss function, batch of numpy arrays, the forward's inputs among them)
CASES = {
    "mlp": ("MLP", {}, "classification_loss", lambda: [_f32(6, 12), _rng(1).integers(0, 5, 6)], 1),
    "lenet5": ("LeNet5", {}, "classification_loss", lambda: [_f32(2, 1, 28, 28), _rng(1).integers(0, 10, 2)], 1),
    "resnet18": ("ResNet18", {}, "classification_loss", lambda: [_f32(4, 3, 16, 16), _rng(1).integers(0, 10, 4)], 1),
    "dcgan": ("DCGAN", {}, "gan_loss",
              lambda: [_f32(4, 8, 1, 1), np.tanh(_f32(4, 3, 32, 32, seed=1)), np.array([0, 1, 0, 1], np.float32)],
              1),
    "lstm_lm": ("RecurrentLM", {"cell": "LSTM"}, "lm_loss", lambda: [_tokens((3, 7), 1), _tokens((3, 7), 2)], 1),
    "gru_lm": ("RecurrentLM", {"cell": "GRU"}, "lm_loss", lambda: [_tokens((3, 7), 1), _tokens((3, 7), 2)], 1),
    "transformer_classifier": ("TransformerClassifier", {}, "classification_loss",
                               lambda: [_tokens((3, 9), 1), _rng(1).integers(0, 3, 3)], 1),
    "seq2seq_transformer": ("Seq2SeqTransformer", {}, "seq2seq_loss",
                            lambda: [_tokens((2, 7), 1), _tokens((2, 6), 2), _tokens((2, 6), 3)], 2),
    "vae": ("VAE", {}, "vae_loss",
            lambda: [_rng(1).uniform(0, 1, (3, 36)).astype(np.float32), _f32(3, 4, seed=2)], 2),
}


def _pair(name, **overrides):
    """The model built from the same source by PyTorch and by Avalon, with PyTorch's weights loaded."""
    cls, kwargs, _, _, _ = CASES[name]
    torch.manual_seed(0)
    theirs = TORCH_NS[cls](**kwargs, **overrides)
    with torch.no_grad():  # PyTorch starts BatchNorm at 1 and 0: random statistics and affine make them count
        for module in theirs.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                for scale in (module.weight, module.running_var):
                    scale.copy_(torch.rand_like(scale) + 0.5)
                for shift in (module.bias, module.running_mean):
                    shift.copy_(torch.randn_like(shift) * 0.1)
    ours = AVALON_NS[cls](**kwargs, **overrides)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def _as_torch(arrays):
    return [torch.tensor(a) for a in arrays]


def _outputs(result):
    return list(result) if isinstance(result, (tuple, list)) else [result]


def _assert_close(ours, theirs, what, rtol=RTOL, atol=ATOL):
    for a, b in zip(_outputs(ours), _outputs(theirs)):
        np.testing.assert_allclose(np.asarray(a), b.detach().numpy(), rtol=rtol, atol=atol, err_msg=what)


@pytest.mark.parametrize("name", list(CASES))
def test_eval_mode_forward_matches(name):
    ours, theirs = _pair(name, **({} if name == "dcgan" else {"dropout": 0.3}))
    ours.eval()
    theirs.eval()
    batch = CASES[name][3]()
    inputs = batch[:CASES[name][4]]
    # grad mode stays on: PyTorch's inference fast paths change what padded positions hold
    _assert_close(ours(*inputs), theirs(*_as_torch(inputs)), "eval-mode output")


@pytest.mark.parametrize("name", list(CASES))
def test_training_step_matches(name):
    """Train-mode forward, loss, every parameter gradient, then one SGD step: updated parameters and
    BatchNorm running statistics."""
    ours, theirs = _pair(name)
    _, _, loss_name, make_batch, n_inputs = CASES[name]
    batch = make_batch()
    _assert_close(ours(*batch[:n_inputs]), theirs(*_as_torch(batch[:n_inputs])), "train-mode output")

    opt = avalon.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9)
    loss, grads = avalon.grad(AVALON_NS[loss_name], ours, *batch)
    opt.step(grads[0])

    torch_opt = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)
    torch_opt.zero_grad()
    expected = TORCH_NS[loss_name](theirs, *_as_torch(batch))
    expected.backward()
    np.testing.assert_allclose(loss, expected.item(), rtol=RTOL, atol=ATOL)
    names = [n for n, _ in theirs.named_parameters()]
    assert list(grads[0].keys()) == names
    for pname, p in theirs.named_parameters():
        np.testing.assert_allclose(grads[0][pname], p.grad.numpy(), rtol=RTOL, atol=ATOL, err_msg=pname)
    torch_opt.step()
    state = theirs.state_dict()
    for key, value in ours.state_dict().items():
        np.testing.assert_allclose(value, state[key].numpy(), rtol=RTOL, atol=ATOL, err_msg=key)


def test_batchnorm_models_have_running_statistics():
    for name in ("resnet18", "dcgan"):
        ours, _ = _pair(name)
        keys = [k for k in ours.state_dict() if k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
        assert len(keys) >= 9, name


def test_the_port_changes_nothing_but_imports():
    assert "avalon" not in MODELS
    torch_models = {k for k, v in TORCH_NS.items() if isinstance(v, type) and issubclass(v, torch.nn.Module)}
    avalon_models = {k for k, v in AVALON_NS.items() if isinstance(v, type) and issubclass(v, avalon.nn.Module)}
    assert torch_models == avalon_models and len(torch_models) == 11
