"""Can two NCCL ranks share one GPU? (torchrun --nproc_per_node=2 bench/nccl_same_gpu.py)"""
import os

import torch
import torch.distributed as dist

rank = int(os.environ["RANK"])
torch.cuda.set_device(0)
dist.init_process_group("nccl", device_id=torch.device("cuda", 0))
x = torch.full((4,), float(rank + 1), device="cuda")
try:
    dist.all_reduce(x)
    torch.cuda.synchronize()
    print(f"rank {rank}: all_reduce on a shared GPU gave {x.tolist()}")
except Exception as exc:
    print(f"rank {rank}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
dist.destroy_process_group()
