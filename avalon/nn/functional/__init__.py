"""PyTorch's `torch.nn.functional` under the same names: `import avalon.nn.functional as F`."""
