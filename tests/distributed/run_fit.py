"""Scenario (2 ranks): avalon.fit on a DistributedDataParallel model with a DistributedSampler.
argv: checkpoint path, epochs, "resume", "fresh" or "split" (rank 1 resumes from a file it lacks). Each rank reports its history, the parameters'
checksum, whether it showed progress and how many checkpoints it wrote, as JSON."""
import importlib
import json
import sys

import numpy as np

import avalon
import avalon.distributed as dist
import avalon.nn as nn
import avalon.nn.functional as F
from avalon import optim
from avalon.data import DataLoader, DistributedSampler, TensorDataset
from avalon.nn.parallel import DistributedDataParallel
from report import say

fit_module = importlib.import_module("avalon.train.fit")  # the module (avalon.train.fit is also the function)

checkpoint, epochs, resume = sys.argv[1], int(sys.argv[2]), sys.argv[3] in ("resume", "split")
dist.init_process_group("mpi")
rank = dist.get_rank()
if sys.argv[3] == "split" and rank == 1:
    checkpoint += ".elsewhere"  # a file rank 1 does not have: it would start from the beginning
shown, saved = [], []
progress = fit_module._progress
fit_module._progress = lambda loader, description, enabled: shown.append(enabled) or progress(loader, description,
                                                                                             enabled)
save = fit_module.save_training
fit_module.save_training = lambda *args: saved.append(args[4]) or save(*args)

data = np.random.default_rng(0)
x, y = data.standard_normal((40, 4)).astype(np.float32), data.integers(0, 3, 40)
dataset = TensorDataset(x, y)
loader = DataLoader(dataset, batch_size=5, sampler=DistributedSampler(dataset, seed=1))
val_loader = DataLoader(dataset, batch_size=10, sampler=DistributedSampler(dataset, shuffle=False))
avalon.manual_seed(rank)  # different on each rank: DDP starts every rank from rank 0's weights
model = DistributedDataParallel(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)))
opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def checksum():
    return float(sum(np.asarray(p, np.float64).sum() for p in model.parameters()))


before = checksum()
try:
    history = avalon.fit(model, lambda m, x, y: F.cross_entropy(m(x), y), loader, opt, epochs, val_loader=val_loader,
                         metrics={"accuracy": lambda out, y: float((np.asarray(out).argmax(1) == y).mean())},
                         checkpoint=checkpoint, resume=resume)
except avalon.AvalonError as error:
    say(rank, json.dumps({"error": str(error), "unchanged": checksum() == before}))
    raise SystemExit(0)
say(rank, json.dumps({"epochs": history.epochs, "steps": history.steps, "shown": shown, "saved": saved,
                      "checksum": checksum()}))
