"""The five workloads of issue #9, written once as PyTorch source.

bench/steps.py imports this file as it is for PyTorch and, with every "torch" replaced by "avalon"
(a user's one mechanical edit when porting), for Avalon. So this file must stay plain PyTorch code.

WORKLOADS maps each name to its model class, its input shape (without the batch) and its batch size.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

CLASSES = 10


class MLP(nn.Module):
    """784-1024-1024-10 with ReLU."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 1024)
        self.fc2 = nn.Linear(1024, 1024)
        self.fc3 = nn.Linear(1024, CLASSES)

    def forward(self, x):
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class LeNet(nn.Module):
    """conv 1→32→64 3×3, each followed by ReLU and a 2×2 max pool (28→26→13→11→5), fc 1600→128→10."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.fc1 = nn.Linear(1600, 128)
        self.fc2 = nn.Linear(128, CLASSES)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


class BasicBlock(nn.Module):
    """ResNet's basic block at constant width: conv-BN-ReLU, conv-BN, plus the input, ReLU."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + x)


class ResNetish(nn.Module):
    """Stem conv 3→64 3×3 + BN + ReLU, four basic blocks of 64 channels, global average pool, fc 64→10."""

    def __init__(self, channels=64, blocks=4):
        super().__init__()
        self.conv1 = nn.Conv2d(3, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.layers = nn.Sequential(*[BasicBlock(channels) for _ in range(blocks)])
        self.fc = nn.Linear(channels, CLASSES)

    def forward(self, x):
        x = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class LSTMClassifier(nn.Module):
    """LSTM 128→256 over a batch_first sequence; the last step's output → Linear 10."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(128, 256, batch_first=True)
        self.fc = nn.Linear(256, CLASSES)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out[:, -1])


class Encoder(nn.Module):
    """Transformer encoder: d 256, 4 heads, ff 1024, 2 layers, dropout 0, batch_first; the mean over the
    sequence → Linear 10 (the input is already embedded: the workload is the encoder)."""

    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(256, 4, dim_feedforward=1024, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.fc = nn.Linear(256, CLASSES)

    def forward(self, x):
        return self.fc(self.encoder(x).mean(1))


# name: (model class, input shape without the batch, the batch size)
WORKLOADS = {
    "MLP": (MLP, (784,), 256),
    "LeNet": (LeNet, (1, 28, 28), 128),
    "ResNet-ish": (ResNetish, (3, 32, 32), 64),
    "LSTM": (LSTMClassifier, (50, 128), 32),
    "Transformer": (Encoder, (128, 256), 16),
}
