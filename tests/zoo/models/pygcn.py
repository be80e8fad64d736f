"""A graph convolutional network in the style of tkipf/pygcn: GraphConvolution layers whose
parameters are made with the legacy torch.FloatTensor constructor and reset with uniform_ through
.data, torch.spmm with the adjacency matrix, and a loss on the training nodes chosen by an index."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parameter import Parameter
from torch.nn.modules.module import Module


class GraphConvolution(Module):
    """
    Simple GCN layer, similar to https://arxiv.org/abs/1609.02907
    """

    def __init__(self, in_features, out_features, bias=True):
        super(GraphConvolution, self).__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(torch.FloatTensor(in_features, out_features))
        if bias:
            self.bias = Parameter(torch.FloatTensor(out_features))
        else:
            self.register_parameter('bias', None)
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1. / math.sqrt(self.weight.size(1))
        self.weight.data.uniform_(-stdv, stdv)
        if self.bias is not None:
            self.bias.data.uniform_(-stdv, stdv)

    def forward(self, input, adj):
        support = torch.mm(input, self.weight)
        output = torch.spmm(adj, support)
        if self.bias is not None:
            return output + self.bias
        else:
            return output

    def __repr__(self):
        return self.__class__.__name__ + ' (' \
            + str(self.in_features) + ' -> ' \
            + str(self.out_features) + ')'


class GCN(nn.Module):
    def __init__(self, nfeat, nhid, nclass, dropout):
        super(GCN, self).__init__()

        self.gc1 = GraphConvolution(nfeat, nhid)
        self.gc2 = GraphConvolution(nhid, nclass)
        self.dropout = dropout

    def forward(self, x, adj):
        x = F.relu(self.gc1(x, adj))
        x = F.dropout(x, self.dropout, training=self.training)
        x = self.gc2(x, adj)
        return F.log_softmax(x, dim=1)


def normalize(mx):
    """Row-normalize a matrix"""
    rowsum = mx.sum(1)
    r_inv = rowsum.pow(-1).flatten()
    r_inv[torch.isinf(r_inv)] = 0.
    return r_inv.unsqueeze(1) * mx


def accuracy(output, labels):
    preds = output.max(1)[1].type_as(labels)
    correct = preds.eq(labels).double()
    correct = correct.sum()
    return correct / len(labels)


def make_model():
    return GCN(nfeat=6, nhid=8, nclass=3, dropout=0.5)


def loss_fn(model, features, adj, labels, idx_train):
    output = model(features, adj)
    return F.nll_loss(output[idx_train], labels[idx_train])


def example_batch():
    torch.manual_seed(0)
    n = 10
    edges = (torch.rand(n, n) < 0.3).float()
    adj = normalize(((edges + edges.t()) > 0).float() + torch.eye(n))
    features = normalize(torch.rand(n, 6))
    labels = torch.LongTensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    idx_train = torch.LongTensor(range(6))
    return features, adj, labels, idx_train


def example_inputs():
    return example_batch()[:2]


def probe(model, features, adj):
    """The script's evaluation on the held-out nodes."""
    _, _, labels, _ = example_batch()
    idx_test = torch.arange(6, 10)
    output = model(features, adj)
    return accuracy(output[idx_test], labels[idx_test])
