"""Under a process group, fit refuses a user training DataLoader that does not shard (every rank would see all
the data) and uses one that shards with a DistributedSampler as it is, calling its set_epoch."""

import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

from edgeprune.errors import ConfigError
from edgeprune.train import TrainConfig, fit


class CountingSampler(DistributedSampler):
    epochs: list

    def set_epoch(self, epoch):
        self.epochs.append(epoch)
        super().set_epoch(epoch)


@pytest.fixture
def process_group(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_ddp_takes_only_sharding_user_loaders(process_group):
    torch.manual_seed(0)
    dataset = TensorDataset(torch.randn(24, 4), torch.arange(24) % 2)
    model = nn.Linear(4, 2)
    plain = DataLoader(dataset, batch_size=6, shuffle=True)
    with pytest.raises(ConfigError, match="DataLoader must shard with a DistributedSampler, got RandomSampler"):
        fit(model, plain, DataLoader(dataset, batch_size=6), TrainConfig(epochs=1), progress=False)

    sampler = CountingSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=0)
    sampler.epochs = []
    sharded = DataLoader(dataset, batch_size=6, sampler=sampler)
    result = fit(model, sharded, DataLoader(dataset, batch_size=6), TrainConfig(epochs=2), progress=False)
    assert sampler.epochs == [1, 2]
    assert [h["examples"] for h in result.history] == [24, 24]
