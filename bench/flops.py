"""The floating-point work of one training step of each workload in bench/models.py, counted by hand.

Only matrix products and convolutions are counted (2 FLOPs per multiply-add): they are what a GEMM
floor measures. A layer's forward product costs P; its backward costs P for the weight gradient and P
for the input gradient, except where the input is data (the first layer's input, the LSTM's zero
initial state), whose gradient a training step does not need. tests/bench checks these counts against
PyTorch's own FlopCounterMode.
"""


def conv(batch, c_in, c_out, out_hw, k):
    """Forward FLOPs of a k×k convolution producing out_hw × out_hw maps."""
    return 2 * batch * c_out * out_hw * out_hw * c_in * k * k


def step(forward, data_input_products):
    """A step's FLOPs: every forward product thrice, less the input gradients no one needs."""
    return 3 * sum(forward) - sum(data_input_products)


def mlp(batch):
    layers = [2 * batch * 784 * 1024, 2 * batch * 1024 * 1024, 2 * batch * 1024 * 10]
    return step(layers, layers[:1])


def lenet(batch):
    conv1 = conv(batch, 1, 32, 26, 3)
    layers = [conv1, conv(batch, 32, 64, 11, 3), 2 * batch * 1600 * 128, 2 * batch * 128 * 10]
    return step(layers, [conv1])


def resnetish(batch):
    stem = conv(batch, 3, 64, 32, 3)
    layers = [stem] + [conv(batch, 64, 64, 32, 3)] * 8 + [2 * batch * 64 * 10]
    return step(layers, [stem])


def lstm(batch, seq=50, n_in=128, hidden=256):
    # The input projection of every step, the recurrent product of every step, the classifier.
    projection = 2 * batch * seq * n_in * 4 * hidden
    recurrent_step = 2 * batch * hidden * 4 * hidden
    layers = [projection, seq * recurrent_step, 2 * batch * hidden * 10]
    return step(layers, [projection, recurrent_step])  # x and h0 are data


def transformer(batch, seq=128, d=256, ff=1024, n_layers=2):
    tokens = batch * seq
    in_proj = 2 * tokens * d * 3 * d
    attention = 2 * 2 * batch * seq * seq * d  # scores q·k and the weighted sum of v, all heads
    per_layer = in_proj + attention + 2 * tokens * d * d + 2 * 2 * tokens * d * ff
    return step([n_layers * per_layer, 2 * batch * d * 10], [in_proj])  # the encoder's input is data


COUNTS = {"MLP": mlp, "LeNet": lenet, "ResNet-ish": resnetish, "LSTM": lstm, "Transformer": transformer}
