"""The network of pytorch/examples' mnist/main.py: two convolutions, max pooling, two dropouts,
log_softmax + nll_loss, trained with Adadelta under a StepLR schedule."""
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.optim.lr_scheduler import StepLR


class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output


def test(model, data, target):
    """The example's evaluation: summed batch loss and the number of correct predictions."""
    model.eval()
    test_loss = 0
    correct = 0
    with torch.no_grad():
        output = model(data)
        test_loss += F.nll_loss(output, target, reduction='sum').item()  # sum up batch loss
        pred = output.argmax(dim=1, keepdim=True)  # get the index of the max log-probability
        correct += pred.eq(target.view_as(pred)).sum().item()
    return test_loss, correct


def make_model():
    return Net()


def make_optimizer(model):
    optimizer = optim.Adadelta(model.parameters(), lr=1.0)
    optimizer.scheduler = StepLR(optimizer, step_size=1, gamma=0.7)  # the script steps it after each epoch
    return optimizer


def loss_fn(model, data, target):
    output = model(data)
    return F.nll_loss(output, target)


def example_batch():
    torch.manual_seed(0)
    data = (torch.rand(2, 1, 28, 28) - 0.1307) / 0.3081
    target = torch.tensor([7, 2])
    return data, target


def example_inputs():
    return example_batch()[:1]


def probe(model, data):
    _, target = example_batch()
    return test(model, data, target)
