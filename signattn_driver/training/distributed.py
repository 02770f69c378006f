"""Processes of a run: one, or several under torchrun (DistributedDataParallel), and autocast."""

from dataclasses import dataclass
import os

import torch
import torch.distributed as torch_dist

from signattn_driver.device import resolve_device
from signattn_driver.training.config import TrainConfig


def autocast(device: torch.device, amp: bool):
    """bf16 autocast on CUDA when `amp`; a no-op context elsewhere."""
    return torch.autocast(device.type, dtype=torch.bfloat16,
                          enabled=amp and device.type == 'cuda')


@dataclass
class Distributed:
    """Rank and world size of this process (world 1: no torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        """Whether several processes train together."""
        return self.world > 1

    @property
    def main(self) -> bool:
        """Whether this is rank 0 (the one that writes the run folder)."""
        return self.rank == 0

    def barrier(self):
        """Wait for every process (no-op alone)."""
        if self.enabled:
            torch_dist.barrier()

    def gather(self, t: torch.Tensor, device: torch.device) -> list:
        """All ranks' copies of a same-shaped tensor, on the CPU."""
        if not self.enabled:
            return [t.cpu()]
        t = t.to(device)
        out = [torch.empty_like(t) for _ in range(self.world)]
        torch_dist.all_gather(out, t)
        return [o.cpu() for o in out]


def setup(config: TrainConfig):
    """Return (Distributed, device) from torchrun's environment; joins the process group."""
    world = int(os.environ.get('WORLD_SIZE', '1'))
    if world <= 1:
        return Distributed(), resolve_device(config.device)
    d = Distributed(int(os.environ['RANK']), world, int(os.environ.get('LOCAL_RANK', '0')))
    use_cuda = config.device != 'cpu' and torch.cuda.is_available()
    device = torch.device(f'cuda:{d.local_rank}') if use_cuda else torch.device('cpu')
    if use_cuda:
        torch.cuda.set_device(device)
    d.owns_group = not torch_dist.is_initialized()
    if d.owns_group:
        torch_dist.init_process_group('nccl' if use_cuda else 'gloo')
    return d, device
