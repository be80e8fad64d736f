"""Squeeze-and-excitation networks in the style of moskomule/senet.pytorch: an SELayer that pools,
squeezes with two Linear layers and rescales with expand_as, inside CIFAR-style residual blocks."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class SELayer(nn.Module):
    def __init__(self, channel, reduction=16):
        super(SELayer, self).__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(channel, channel // reduction, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(channel // reduction, channel, bias=False),
            nn.Sigmoid()
        )

    def forward(self, x):
        b, c, _, _ = x.size()
        y = self.avg_pool(x).view(b, c)
        y = self.fc(y).view(b, c, 1, 1)
        return x * y.expand_as(x)


class SEConvExcitation(nn.Module):
    """The squeeze and excitation written with 1x1 convolutions and hard-sigmoid gating."""

    def __init__(self, channel, reduction=4):
        super().__init__()
        self.reduce = nn.Conv2d(channel, channel // reduction, 1)
        self.expand = nn.Conv2d(channel // reduction, channel, 1)

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)
        s = self.expand(F.relu(self.reduce(s)))
        return x * F.hardsigmoid(s)


def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class CifarSEBasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1, reduction=16, conv_excitation=False):
        super(CifarSEBasicBlock, self).__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.se = SEConvExcitation(planes) if conv_excitation else SELayer(planes, reduction)
        if inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, kernel_size=1, stride=stride, bias=False),
                                            nn.BatchNorm2d(planes))
        else:
            self.downsample = lambda x: x
        self.stride = stride

    def forward(self, x):
        residual = self.downsample(x)
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)

        out = self.conv2(out)
        out = self.bn2(out)
        out = self.se(out)

        out += residual
        out = self.relu(out)

        return out


class CifarSEResNet(nn.Module):
    def __init__(self, block, n_size, num_classes=10, reduction=16, width=16):
        super(CifarSEResNet, self).__init__()
        self.inplane = width
        self.conv1 = nn.Conv2d(3, self.inplane, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplane)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, width, blocks=n_size, stride=1, reduction=reduction)
        self.layer2 = self._make_layer(block, width * 2, blocks=n_size, stride=2, reduction=reduction,
                                       conv_excitation=True)
        self.layer3 = self._make_layer(block, width * 4, blocks=n_size, stride=2, reduction=reduction)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width * 4, num_classes)
        self.initialize()

    def initialize(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, block, planes, blocks, stride, reduction, conv_excitation=False):
        strides = [stride] + [1] * (blocks - 1)
        layers = []
        for stride in strides:
            layers.append(block(self.inplane, planes, stride, reduction, conv_excitation))
            self.inplane = planes

        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu(x)

        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)

        x = self.avgpool(x)
        x = x.view(x.size(0), -1)
        x = self.fc(x)

        return x


def se_resnet20(**kwargs):
    """Constructs a ResNet-20 model."""
    model = CifarSEResNet(CifarSEBasicBlock, 3, **kwargs)
    return model


def make_model():
    return CifarSEResNet(CifarSEBasicBlock, 1, num_classes=10, reduction=4, width=8)


def loss_fn(model, images, labels):
    return F.cross_entropy(model(images), labels)


def example_batch():
    torch.manual_seed(0)
    return torch.randn(2, 3, 16, 16), torch.randint(0, 10, (2,))


def example_inputs():
    return example_batch()[:1]
